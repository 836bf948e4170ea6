package ledger

import (
	"errors"

	"github.com/inventory-events/inventory/internal/codec"
)

// stateVersion leads every encoded State, so that the format can change.
const stateVersion = 1

var errCorrupt = errors.New("ledger: corrupt encoded state")

// AppendBinary appends a compact encoding of s to b, for Beam state and
// snapshot files.
func (s *State) AppendBinary(b []byte) []byte {
	b = codec.AppendUvarint(b, stateVersion)
	b = codec.AppendFlags(b, s.HasCount)
	b = codec.AppendVarint(b, s.CountTime)
	b = codec.AppendVarint(b, s.CountQty)
	b = codec.AppendString(b, s.CountEventID)
	b = codec.AppendVarint(b, s.Folded)
	b = codec.AppendVarint(b, s.FoldedThrough)
	b = codec.AppendVarint(b, s.MaxTime)
	b = codec.AppendVarint(b, s.OnHand)
	b = codec.AppendUvarint(b, uint64(s.Severity))
	b = codec.AppendUvarint(b, uint64(len(s.Deltas)))
	for _, d := range s.Deltas {
		b = codec.AppendVarint(b, d.Time)
		b = codec.AppendVarint(b, d.Qty)
	}
	b = codec.AppendUvarint(b, uint64(s.Seen.Len()))
	for id, t := range s.Seen.All() {
		b = codec.AppendString(b, id)
		b = codec.AppendVarint(b, t)
	}
	return b
}

// MarshalBinary encodes s.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil), nil }

// UnmarshalBinary decodes what AppendBinary wrote.
func (s *State) UnmarshalBinary(b []byte) error {
	d := codec.NewReader(b)
	if d.Uvarint() != stateVersion {
		return errCorrupt
	}
	*s = State{}
	s.HasCount = codec.Flag(d.Uvarint(), 0)
	s.CountTime = d.Varint()
	s.CountQty = d.Varint()
	s.CountEventID = d.String()
	s.Folded = d.Varint()
	s.FoldedThrough = d.Varint()
	s.MaxTime = d.Varint()
	s.OnHand = d.Varint()
	s.Severity = Severity(d.Uvarint())
	if n := d.Len(); n > 0 {
		s.Deltas = make([]Delta, n)
		for i := range s.Deltas {
			s.Deltas[i] = Delta{Time: d.Varint(), Qty: d.Varint()}
		}
	}
	if n := d.Len(); n > 0 {
		for range n {
			id := d.String()
			s.Seen.Add(id, d.Varint())
		}
	}
	if d.Done() != nil {
		return errCorrupt
	}
	return nil
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := new(State)
	if err := c.UnmarshalBinary(s.AppendBinary(nil)); err != nil {
		panic(err) // AppendBinary always writes what UnmarshalBinary reads
	}
	c.Oldest = s.Oldest
	return c
}
