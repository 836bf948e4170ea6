package summary

import (
	"errors"
	"reflect"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
)

// part is a bag of Items of one shard: a batch of keys with their events,
// opening or streaming stock. Sources pre-aggregate into Parts, so that the
// pipeline moves a few large elements rather than one per adjustment.
type part struct {
	items map[event.Key]*keyItem // see Items
	// HasSince: Since is the earliest event time that can still change the
	// day (Opening's since): the replay drops the events before it. The
	// opening source sets it on its part of every shard (sharded.SetSince),
	// so that the bound reaches the replay with the data. As a side input of
	// the CSV reader it made Prism's scheduler spin for as long as the
	// reader ran (docs/beam-notes.md, "Speed on Prism").
	HasSince bool
	Since    int64
	// raw is the part as Beam's coder received it, not decoded yet (see
	// decodeRaw): the summary stage decodes it straight into the shard's
	// merged part (mergeParts), with no map and no event slice of its own.
	raw []byte
}

// Items returns the part's items by key.
func (p *part) Items() map[event.Key]*keyItem {
	p.load()
	return p.items
}

// load decodes raw, if p has not been decoded yet.
func (p *part) load() {
	if p.raw == nil {
		return
	}
	raw := p.raw
	*p = part{items: map[event.Key]*keyItem{}}
	if err := p.mergeEncoded(raw); err != nil {
		// mergeParts decodes with the error in hand; the other uses of a
		// part come before any encoding.
		panic(err)
	}
}

// newPart returns an empty part.
func newPart() *part { return &part{items: map[event.Key]*keyItem{}} }

// Item returns the item of k, adding it if needed.
func (p *part) Item(sku, loc string) *keyItem {
	p.load()
	k := event.Key{SKU: sku, LocationID: loc}
	it := p.items[k]
	if it == nil {
		it = &keyItem{SKU: sku, LocationID: loc}
		p.items[k] = it
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
	p.load()
	o.load()
	if o.HasSince && (!p.HasSince || o.Since > p.Since) {
		p.HasSince, p.Since = true, o.Since
	}
	if p.items == nil {
		p.items = map[event.Key]*keyItem{}
	}
	for k, it := range o.items {
		if mine := p.items[k]; mine != nil {
			mine.merge(it)
		} else {
			p.items[k] = it
		}
	}
}

// dropBefore removes the events before p.Since, if p has a bound, and
// returns how many it removed.
func (p *part) dropBefore() int64 {
	p.load()
	if !p.HasSince {
		return 0
	}
	var n int64
	for _, it := range p.items {
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
	p.load()
	n := 0
	for _, it := range p.items {
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
	beam.RegisterCoder(reflect.TypeFor[part](), encodePart, decodeRaw)
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
	if p.raw != nil {
		return p.raw, nil
	}
	b := make([]byte, 0, 64+p.Len()*16)
	b = codec.AppendFlags(b, p.HasSince)
	b = codec.AppendVarint(b, p.Since)
	b = codec.AppendUvarint(b, uint64(len(p.items)))
	var prevID string
	var prevTime int64
	for _, it := range p.items {
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

// decodeRaw is the part's Beam decoder: it keeps b (Beam's own copy of the
// element) to be decoded where the part is used (load, mergeParts).
func decodeRaw(b []byte) (part, error) {
	if b == nil {
		b = []byte{}
	}
	return part{raw: b}, nil
}

// decodePart decodes a part written by encodePart.
func decodePart(b []byte) (part, error) {
	p := part{items: map[event.Key]*keyItem{}}
	if err := p.mergeEncoded(b); err != nil {
		return part{}, err
	}
	return p, nil
}

// mergeEncoded decodes b (encodePart) into p, as Merge would add it: the
// events of a key p has are appended to its own, and of two bounds
// (Since) the later one holds.
func (p *part) mergeEncoded(b []byte) error {
	d := codec.NewReader(b)
	hasSince, since := codec.Flag(d.Uvarint(), 0), d.Varint()
	if hasSince && (!p.HasSince || since > p.Since) {
		p.HasSince, p.Since = true, since
	}
	n := d.Len()
	var id []byte // the id read last
	var prevTime int64
	for i := 0; i < n && d.Err() == nil; i++ {
		sku, loc := d.String(), d.String()
		flags := d.Uvarint()
		o := keyItem{SKU: sku, LocationID: loc, HasOpening: codec.Flag(flags, 0), HasStreaming: codec.Flag(flags, 1),
			OpeningOnHand: d.Varint(), OpeningAt: d.Varint(), StreamingOnHand: d.Varint()}
		k := event.Key{SKU: sku, LocationID: loc}
		it := p.items[k]
		if it == nil {
			it = &o
			p.items[k] = it
		} else {
			it.merge(&o)
		}
		ne := d.Len()
		it.Events = slices.Grow(it.Events, ne)
		for range ne {
			shared := d.Uvarint()
			if shared > uint64(len(id)) {
				return errCorrupt
			}
			id = append(id[:shared], d.Bytes()...)
			prevTime += d.Varint()
			it.Events = append(it.Events, keyEvent{ID: string(id), Time: prevTime, Reason: event.Reason(d.Uvarint()), Qty: d.Varint()})
		}
	}
	if d.Done() != nil {
		return errCorrupt
	}
	return nil
}
