package summary

import (
	"errors"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
)

// part is a bag of Items of one shard: a batch of keys with their events,
// opening or streaming stock. Sources pre-aggregate into Parts, so that the
// pipeline moves a few large elements rather than one per adjustment.
type part struct {
	Items map[event.Key]*keyItem
	// HasSince: Since is the earliest event time that can still change the
	// day (Opening's since): the replay drops the events before it. The
	// opening source sets it on its part of every shard (sharded.SetSince),
	// so that the bound reaches the replay with the data. As a side input of
	// the CSV reader it made Prism's scheduler spin for as long as the
	// reader ran (docs/beam-notes.md, "Speed on Prism").
	HasSince bool
	Since    int64
}

// newPart returns an empty part.
func newPart() *part { return &part{Items: map[event.Key]*keyItem{}} }

// Item returns the item of k, adding it if needed.
func (p *part) Item(sku, loc string) *keyItem {
	k := event.Key{SKU: sku, LocationID: loc}
	it := p.Items[k]
	if it == nil {
		it = &keyItem{SKU: sku, LocationID: loc}
		p.Items[k] = it
	}
	return it
}

// AddEvent adds an event of a key.
func (p *part) AddEvent(a *event.Adjustment) {
	it := p.Item(a.SKU, a.LocationID)
	it.Events = append(it.Events, keyEvent{ID: a.EventID, Time: a.EventTime, Reason: a.Reason, Qty: a.Quantity})
}

// Merge adds o's items to p; of two bounds (Since), the later one holds.
func (p *part) Merge(o *part) {
	if o.HasSince && (!p.HasSince || o.Since > p.Since) {
		p.HasSince, p.Since = true, o.Since
	}
	if p.Items == nil {
		p.Items = map[event.Key]*keyItem{}
	}
	for k, it := range o.Items {
		if mine := p.Items[k]; mine != nil {
			mine.merge(it)
		} else {
			p.Items[k] = it
		}
	}
}

// dropBefore removes the events before p.Since, if p has a bound, and
// returns how many it removed.
func (p *part) dropBefore() int64 {
	if !p.HasSince {
		return 0
	}
	var n int64
	for _, it := range p.Items {
		kept := it.Events[:0]
		for _, e := range it.Events {
			if e.Time >= p.Since {
				kept = append(kept, e)
			}
		}
		n += int64(len(it.Events) - len(kept))
		it.Events = kept
	}
	return n
}

// Len returns the number of events in p.
func (p *part) Len() int {
	n := 0
	for _, it := range p.Items {
		n += len(it.Events)
	}
	return n
}

// sharded splits items into one part per shard, of n.
type sharded struct {
	N     int
	Parts map[int]*part
}

// newSharded returns an empty sharded of n shards.
func newSharded(n int) *sharded { return &sharded{N: n, Parts: map[int]*part{}} }

// Part returns the part of the key's shard.
func (s *sharded) Part(sku, loc string) *part {
	i := event.Key{SKU: sku, LocationID: loc}.Shard(s.N)
	p := s.Parts[i]
	if p == nil {
		p = newPart()
		s.Parts[i] = p
	}
	return p
}

// SetSince sets the bound of every shard's part (see part.Since), adding
// the Parts of the shards that have no item.
func (s *sharded) SetSince(since int64) {
	for i := range s.N {
		p := s.Parts[i]
		if p == nil {
			p = newPart()
			s.Parts[i] = p
		}
		p.HasSince, p.Since = true, since
	}
}

// Emit emits every part with its shard and empties s.
func (s *sharded) Emit(emit func(int, part)) {
	for i, p := range s.Parts {
		emit(i, *p)
	}
	clear(s.Parts)
}

func init() {
	beam.RegisterType(reflect.TypeFor[part]())
	beam.RegisterCoder(reflect.TypeFor[part](), encodePart, decodePart)
}

// encodePart writes p compactly: varints and length-prefixed strings.
//
// Parts are what the job shuffles: about all of the day's adjustments
// cross the runner twice (Prism copies them several times more), so an
// event is written in about half of its plain size:
//   - its time as the difference from the event written before it (the
//     events of a key come mostly in time order, a few minutes apart),
//   - its id front-coded: how many leading bytes it shares with the id
//     written before it, then the rest (ids of one source share a prefix:
//     a name, a date, a sequence's leading digits, a ULID's or UUIDv7's
//     time).
func encodePart(p part) ([]byte, error) {
	b := make([]byte, 0, 64+p.Len()*16)
	b = codec.AppendFlags(b, p.HasSince)
	b = codec.AppendVarint(b, p.Since)
	b = codec.AppendUvarint(b, uint64(len(p.Items)))
	var prevID string
	var prevTime int64
	for _, it := range p.Items {
		b = codec.AppendString(b, it.SKU)
		b = codec.AppendString(b, it.LocationID)
		b = codec.AppendFlags(b, it.HasOpening, it.HasStreaming)
		b = codec.AppendVarint(b, it.OpeningOnHand)
		b = codec.AppendVarint(b, it.OpeningAt)
		b = codec.AppendVarint(b, it.StreamingOnHand)
		b = codec.AppendUvarint(b, uint64(len(it.Events)))
		for _, e := range it.Events {
			shared := commonPrefix(prevID, e.ID)
			b = codec.AppendUvarint(b, uint64(shared))
			b = codec.AppendString(b, e.ID[shared:])
			b = codec.AppendVarint(b, e.Time-prevTime) // wraps around, and back in decodePart
			b = codec.AppendUvarint(b, uint64(e.Reason))
			b = codec.AppendVarint(b, e.Qty)
			prevID, prevTime = e.ID, e.Time
		}
	}
	return b, nil
}

// commonPrefix returns how many leading bytes a and b share.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

var errCorrupt = errors.New("summary: corrupt encoded part")

func decodePart(b []byte) (part, error) {
	d := codec.NewReader(b)
	hasSince, since := codec.Flag(d.Uvarint(), 0), d.Varint()
	n := d.Len()
	p := part{Items: make(map[event.Key]*keyItem, min(n, 1<<16)), HasSince: hasSince, Since: since}
	var id []byte // the id read last
	var prevTime int64
	for i := 0; i < n && d.Err() == nil; i++ {
		it := &keyItem{SKU: d.String(), LocationID: d.String()}
		flags := d.Uvarint()
		it.HasOpening, it.HasStreaming = codec.Flag(flags, 0), codec.Flag(flags, 1)
		it.OpeningOnHand, it.OpeningAt, it.StreamingOnHand = d.Varint(), d.Varint(), d.Varint()
		it.Events = make([]keyEvent, d.Len())
		for j := range it.Events {
			shared := d.Uvarint()
			if shared > uint64(len(id)) {
				return part{}, errCorrupt
			}
			id = append(id[:shared], d.Bytes()...)
			prevTime += d.Varint()
			it.Events[j] = keyEvent{ID: string(id), Time: prevTime, Reason: event.Reason(d.Uvarint()), Qty: d.Varint()}
		}
		p.Items[it.Key()] = it
	}
	if d.Done() != nil {
		return part{}, errCorrupt
	}
	return p, nil
}
