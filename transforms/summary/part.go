package summary

import (
	"errors"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/inventory-events/inventory/internal/event"
	"google.golang.org/protobuf/encoding/protowire"
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

// Shard returns the shard of a key among n: FNV-1a of "sku|location_id",
// the same on every worker.
func Shard(sku, loc string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(sku); i++ {
		h = (h ^ uint32(sku[i])) * 16777619
	}
	h = (h ^ '|') * 16777619
	for i := 0; i < len(loc); i++ {
		h = (h ^ uint32(loc[i])) * 16777619
	}
	return int(h % uint32(n))
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
	i := Shard(sku, loc, s.N)
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
	b = protowire.AppendVarint(b, uint64(len(p.Items)))
	for _, it := range p.Items {
		b = protowire.AppendString(b, it.SKU)
		b = protowire.AppendString(b, it.LocationID)
		var flags uint64
		if it.HasOpening {
			flags |= 1
		}
		if it.HasStreaming {
			flags |= 2
		}
		b = protowire.AppendVarint(b, flags)
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(it.OpeningOnHand))
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(it.OpeningAt))
		b = protowire.AppendVarint(b, protowire.EncodeZigZag(it.StreamingOnHand))
		b = protowire.AppendVarint(b, uint64(len(it.Events)))
		for _, e := range it.Events {
			b = protowire.AppendString(b, e.ID)
			b = protowire.AppendVarint(b, protowire.EncodeZigZag(e.Time))
			b = protowire.AppendVarint(b, uint64(e.Reason))
			b = protowire.AppendVarint(b, protowire.EncodeZigZag(e.Qty))
		}
	}
	return b, nil
}

var errCorrupt = errors.New("summary: corrupt encoded Part")

func decodePart(b []byte) (Part, error) {
	d := decoder{b: b}
	n := d.uvarint()
	p := Part{Items: make(map[event.Key]*Item, min(n, 1<<16))}
	for i := uint64(0); i < n && d.err == nil; i++ {
		it := &Item{SKU: d.str(), LocationID: d.str()}
		flags := d.uvarint()
		it.HasOpening, it.HasStreaming = flags&1 != 0, flags&2 != 0
		it.OpeningOnHand, it.OpeningAt, it.StreamingOnHand = d.varint(), d.varint(), d.varint()
		ne := d.uvarint()
		if ne > uint64(len(d.b)) {
			return Part{}, errCorrupt
		}
		it.Events = make([]Event, ne)
		for j := range it.Events {
			it.Events[j] = Event{ID: d.str(), Time: d.varint(), Reason: event.Reason(d.uvarint()), Qty: d.varint()}
		}
		p.Items[it.Key()] = it
	}
	if d.err != nil || len(d.b) != 0 {
		return Part{}, errCorrupt
	}
	return p, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := protowire.ConsumeVarint(d.b)
	if n < 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 { return protowire.DecodeZigZag(d.uvarint()) }

func (d *decoder) str() string {
	if d.err != nil {
		return ""
	}
	v, n := protowire.ConsumeString(d.b)
	if n < 0 {
		d.err = errCorrupt
		return ""
	}
	d.b = d.b[n:]
	return v
}
