package ledger

import (
	"slices"

	"github.com/inventory-events/inventory/internal/codec"
)

// Change records: what changed in a State since the last time it was
// written, for a store that keeps a full encoding (AppendBinary) and lays
// changes over it, so that writing a busy key costs what changed rather
// than its whole dedup memory (a key with a thousand events in the horizon
// holds a thousand ids).
//
// A change record holds every scalar field whole, the ids and deltas added
// since the last record, and SweptBefore, the cut of the last sweep. The
// decoded State is then exact: a sweep removes the ids and deltas older than
// its cut, and no id or delta older than a past cut is ever added again
// (Apply refuses events older than MaxTime - horizon, which is at least that
// cut); a count removes the deltas at or before its time, and no such delta
// is added after it. So the ids and deltas of a State are all those ever
// added, less those older than SweptBefore and the deltas at or before
// CountTime.

// changesVersion leads every change record.
const changesVersion = 1

type changeLog struct {
	ids    []idTime
	deltas []Delta
}

// TrackChanges makes s record the ids and deltas it adds from now on, for
// AppendChanges; what it recorded before is forgotten. Call it once s is
// written whole (AppendBinary) or decoded.
func (s *State) TrackChanges() {
	s.tracking, s.changes = true, nil
}

// track returns the change log, made on the first change since the last
// record: between records a State costs one nil pointer for it.
func (s *State) track() *changeLog {
	if s.changes == nil {
		s.changes = &changeLog{}
	}
	return s.changes
}

// AppendChanges appends to b the change record of s since TrackChanges or
// the last AppendChanges, and starts recording afresh.
func (s *State) AppendChanges(b []byte) []byte {
	b = codec.AppendUvarint(b, changesVersion)
	b = s.appendScalars(b)
	b = codec.AppendVarint(b, s.SweptBefore)
	var c changeLog // none since the last record
	if s.changes != nil {
		c = *s.changes
	}
	b = appendDeltas(b, c.deltas)
	b = codec.AppendUvarint(b, uint64(len(c.ids)))
	for _, e := range c.ids {
		b = codec.AppendString(b, e.id)
		b = codec.AppendVarint(b, e.t)
	}
	s.changes = nil
	return b
}

// ApplyChanges lays a change record (AppendChanges) over s, which must be
// the State it was recorded from as of the record before: decoded from its
// full encoding, with the change records since applied in order.
func (s *State) ApplyChanges(b []byte) error {
	d := codec.NewReader(b)
	if d.Uvarint() != changesVersion {
		return errCorrupt
	}
	s.readScalars(d)
	cut := d.Varint()
	s.Deltas = readDeltas(d, s.Deltas)
	s.Seen.read(d)
	if d.Done() != nil {
		return errCorrupt
	}
	s.Deltas = slices.DeleteFunc(s.Deltas, func(x Delta) bool {
		return x.Time < cut || (s.HasCount && x.Time <= s.CountTime)
	})
	if len(s.Deltas) == 0 {
		s.Deltas = nil
	}
	if cut > s.SweptBefore {
		s.Seen.deleteBefore(cut)
		s.SweptBefore = cut
	}
	s.Oldest = 0
	return nil
}
