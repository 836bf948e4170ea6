package ledger

import (
	"errors"
	"slices"

	"github.com/inventory-events/inventory/internal/codec"
)

// stateVersion leads every encoded State, so that the format can change.
const stateVersion = 1

var errCorrupt = errors.New("ledger: corrupt encoded state")

// AppendBinary appends a compact encoding of s to b, for Beam state and
// snapshot files.
func (s *State) AppendBinary(b []byte) []byte {
	b = codec.AppendUvarint(b, stateVersion)
	b = s.appendScalars(b)
	b = appendDeltas(b, s.Deltas)
	b = codec.AppendUvarint(b, uint64(s.Seen.Len()))
	for id, t := range s.Seen.All() {
		b = codec.AppendString(b, id)
		b = codec.AppendVarint(b, t)
	}
	return b
}

// appendScalars appends the fields every encoding holds whole: the whole
// state (AppendBinary) and a change record (AppendChanges).
func (s *State) appendScalars(b []byte) []byte {
	b = codec.AppendFlags(b, s.HasCount)
	b = codec.AppendVarint(b, s.CountTime)
	b = codec.AppendVarint(b, s.CountQty)
	b = codec.AppendString(b, s.CountEventID)
	b = codec.AppendVarint(b, s.Folded)
	b = codec.AppendVarint(b, s.FoldedThrough)
	b = codec.AppendVarint(b, s.MaxTime)
	b = codec.AppendVarint(b, s.OnHand)
	return codec.AppendUvarint(b, uint64(s.Severity))
}

// readScalars reads what appendScalars wrote into s.
func (s *State) readScalars(d *codec.Reader) {
	s.HasCount = codec.Flag(d.Uvarint(), 0)
	s.CountTime = d.Varint()
	s.CountQty = d.Varint()
	s.CountEventID = d.String()
	s.Folded = d.Varint()
	s.FoldedThrough = d.Varint()
	s.MaxTime = d.Varint()
	s.OnHand = d.Varint()
	s.Severity = Severity(d.Uvarint())
}

func appendDeltas(b []byte, ds []Delta) []byte {
	b = codec.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = codec.AppendVarint(b, d.Time)
		b = codec.AppendVarint(b, d.Qty)
	}
	return b
}

// read adds the ids a count-prefixed list of (id, event time) holds, as
// AppendBinary and AppendChanges write it.
func (s *IDs) read(d *codec.Reader) {
	for n := d.Len(); n > 0 && d.Err() == nil; n-- {
		id := d.String()
		s.add(id, d.Varint())
	}
}

// readDeltas appends the deltas appendDeltas wrote to ds.
func readDeltas(d *codec.Reader, ds []Delta) []Delta {
	n := d.Len()
	ds = slices.Grow(ds, n)
	for ; n > 0 && d.Err() == nil; n-- {
		ds = append(ds, Delta{Time: d.Varint(), Qty: d.Varint()})
	}
	return ds
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
	s.readScalars(d)
	s.Deltas = readDeltas(d, nil)
	s.Seen.read(d)
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
