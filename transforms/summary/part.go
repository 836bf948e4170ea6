package summary

import (
	"errors"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
)

// Part is a bag of Items of one shard: a batch of keys with their events,
// opening or streaming stock. Sources pre-aggregate into Parts, so that the
// pipeline moves a few large elements rather than one per adjustment.
type Part struct {
	Items map[event.Key]*Item
}

// NewPart returns an empty Part.
func NewPart() *Part { return &Part{Items: map[event.Key]*Item{}} }

// Item returns the item of k, adding it if needed.
func (p *Part) Item(sku, loc string) *Item {
	k := event.Key{SKU: sku, LocationID: loc}
	it := p.Items[k]
	if it == nil {
		it = &Item{SKU: sku, LocationID: loc}
		p.Items[k] = it
	}
	return it
}

// AddEvent adds an event of a key.
func (p *Part) AddEvent(a *event.Adjustment) {
	it := p.Item(a.SKU, a.LocationID)
	it.Events = append(it.Events, Event{ID: a.EventID, Time: a.EventTime, Reason: a.Reason, Qty: a.Quantity})
}

// Merge adds o's items to p.
func (p *Part) Merge(o *Part) {
	if p.Items == nil {
		p.Items = map[event.Key]*Item{}
	}
	for k, it := range o.Items {
		if mine := p.Items[k]; mine != nil {
			mine.merge(it)
		} else {
			p.Items[k] = it
		}
	}
}

// Len returns the number of events in p.
func (p *Part) Len() int {
	n := 0
	for _, it := range p.Items {
		n += len(it.Events)
	}
	return n
}

// Sharded splits items into one Part per shard, of n.
type Sharded struct {
	N     int
	Parts map[int]*Part
}

// NewSharded returns an empty Sharded of n shards.
func NewSharded(n int) *Sharded { return &Sharded{N: n, Parts: map[int]*Part{}} }

// Part returns the Part of the key's shard.
func (s *Sharded) Part(sku, loc string) *Part {
	i := event.Key{SKU: sku, LocationID: loc}.Shard(s.N)
	p := s.Parts[i]
	if p == nil {
		p = NewPart()
		s.Parts[i] = p
	}
	return p
}

// Emit emits every non-empty Part with its shard and empties s.
func (s *Sharded) Emit(emit func(int, Part)) {
	for i, p := range s.Parts {
		emit(i, *p)
	}
	clear(s.Parts)
}

func init() {
	beam.RegisterType(reflect.TypeFor[Part]())
	beam.RegisterCoder(reflect.TypeFor[Part](), encodePart, decodePart)
}

// encodePart writes p compactly: varints and length-prefixed strings.
func encodePart(p Part) ([]byte, error) {
	b := make([]byte, 0, 64+p.Len()*24)
	b = codec.AppendUvarint(b, uint64(len(p.Items)))
	for _, it := range p.Items {
		b = codec.AppendString(b, it.SKU)
		b = codec.AppendString(b, it.LocationID)
		b = codec.AppendFlags(b, it.HasOpening, it.HasStreaming, it.HasHistory)
		b = codec.AppendVarint(b, it.OpeningOnHand)
		b = codec.AppendVarint(b, it.OpeningAt)
		b = codec.AppendVarint(b, it.StreamingOnHand)
		if it.HasHistory {
			b = codec.AppendVarint(b, it.Sold6)
			b = codec.AppendVarint(b, it.Sold27)
			b = codec.AppendVarint(b, it.HistoryDays)
		}
		b = codec.AppendUvarint(b, uint64(len(it.Events)))
		for _, e := range it.Events {
			b = codec.AppendString(b, e.ID)
			b = codec.AppendVarint(b, e.Time)
			b = codec.AppendUvarint(b, uint64(e.Reason))
			b = codec.AppendVarint(b, e.Qty)
		}
	}
	return b, nil
}

var errCorrupt = errors.New("summary: corrupt encoded Part")

func decodePart(b []byte) (Part, error) {
	d := codec.NewReader(b)
	n := d.Len()
	p := Part{Items: make(map[event.Key]*Item, min(n, 1<<16))}
	for i := 0; i < n && d.Err() == nil; i++ {
		it := &Item{SKU: d.String(), LocationID: d.String()}
		flags := d.Uvarint()
		it.HasOpening, it.HasStreaming, it.HasHistory = codec.Flag(flags, 0), codec.Flag(flags, 1), codec.Flag(flags, 2)
		it.OpeningOnHand, it.OpeningAt, it.StreamingOnHand = d.Varint(), d.Varint(), d.Varint()
		if it.HasHistory {
			it.Sold6, it.Sold27, it.HistoryDays = d.Varint(), d.Varint(), d.Varint()
		}
		it.Events = make([]Event, d.Len())
		for j := range it.Events {
			it.Events[j] = Event{ID: d.String(), Time: d.Varint(), Reason: event.Reason(d.Uvarint()), Qty: d.Varint()}
		}
		p.Items[it.Key()] = it
	}
	if d.Done() != nil {
		return Part{}, errCorrupt
	}
	return p, nil
}
