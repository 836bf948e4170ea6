package ledger

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// stateVersion leads every encoded State, so that the format can change.
const stateVersion = 1

var errCorrupt = errors.New("ledger: corrupt encoded state")

// AppendBinary appends a compact encoding of s to b, for Beam state and
// snapshot files.
func (s *State) AppendBinary(b []byte) []byte {
	b = protowire.AppendVarint(b, stateVersion)
	var flags uint64
	if s.HasCount {
		flags |= 1
	}
	b = protowire.AppendVarint(b, flags)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(s.CountTime))
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(s.CountQty))
	b = protowire.AppendString(b, s.CountEventID)
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(s.Folded))
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(s.FoldedThrough))
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(s.MaxTime))
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(s.OnHand))
	b = protowire.AppendVarint(b, uint64(s.Severity))
	b = protowire.AppendVarint(b, uint64(len(s.Deltas)))
	for _, d := range s.Deltas {
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(d.Time))
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(d.Qty))
	}
	b = protowire.AppendVarint(b, uint64(len(s.Seen)))
	for id, t := range s.Seen {
		b = protowire.AppendString(b, id)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(t))
	}
	return b
}

// MarshalBinary encodes s.
func (s *State) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil), nil }

// UnmarshalBinary decodes what AppendBinary wrote.
func (s *State) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if d.uvarint() != stateVersion {
		return errCorrupt
	}
	*s = State{}
	s.HasCount = d.uvarint()&1 != 0
	s.CountTime = d.varint()
	s.CountQty = d.varint()
	s.CountEventID = d.str()
	s.Folded = d.varint()
	s.FoldedThrough = d.varint()
	s.MaxTime = d.varint()
	s.OnHand = d.varint()
	s.Severity = Severity(d.uvarint())
	n := d.uvarint()
	if n > uint64(len(b)) {
		return errCorrupt
	}
	if n > 0 {
		s.Deltas = make([]Delta, n)
		for i := range s.Deltas {
			s.Deltas[i] = Delta{Time: d.varint(), Qty: d.varint()}
		}
	}
	n = d.uvarint()
	if n > uint64(len(b)) {
		return errCorrupt
	}
	if n > 0 {
		s.Seen = make(map[string]int64, n)
		for range n {
			id := d.str()
			s.Seen[id] = d.varint()
		}
	}
	if d.err || len(d.b) != 0 {
		return errCorrupt
	}
	return nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := protowire.ConsumeVarint(d.b)
	if n < 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 { return protowire.DecodeZigZag(d.uvarint()) }

func (d *decoder) str() string {
	v, n := protowire.ConsumeBytes(d.b)
	if n < 0 {
		d.err, d.b = true, nil
		return ""
	}
	d.b = d.b[n:]
	return string(v)
}
