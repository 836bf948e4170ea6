package summary

import (
	"cmp"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"

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
// cross the runner twice (Prism copies them several times more, one core
// at a time, while neither stage runs), so a part is written in well under
// half of its plain size:
//   - its keys in order, each key's SKU and location front-coded: how many
//     leading bytes they share with the key written before, then the rest;
//   - a key's opening and streaming stock only when it has them;
//   - an event's time as the difference from the event written before it
//     (the events of a key come mostly in time order, a few minutes apart),
//     in milliseconds when it is a whole number of them, as most sources'
//     times are;
//   - its id front-coded against the id written before it (ids of one
//     source share a prefix: a name, a date, a sequence's leading digits, a
//     ULID's or UUIDv7's time), and when what differs is a decimal number of
//     the same width in both, as in a sequence, the difference of the two
//     numbers.
func encodePart(p part) ([]byte, error) {
	if p.raw != nil {
		return p.raw, nil
	}
	items := make([]*keyItem, 0, len(p.items))
	for _, it := range p.items {
		items = append(items, it)
	}
	slices.SortFunc(items, compareItems)
	e := newPartEncoder(p.HasSince, p.Since, len(items), p.Len())
	for _, it := range items {
		e.item(it)
	}
	return e.b, nil
}

// compareItems orders items by key: SKU, then location.
func compareItems(a, b *keyItem) int {
	return cmp.Or(strings.Compare(a.SKU, b.SKU), strings.Compare(a.LocationID, b.LocationID))
}

// partEncoder writes one encoded part (encodePart), item by item, in key
// order.
type partEncoder struct {
	b                        []byte
	prevSKU, prevLoc, prevID string
	prevTime                 int64
}

// newPartEncoder starts a part of items items and about events events.
func newPartEncoder(hasSince bool, since int64, items, events int) *partEncoder {
	b := make([]byte, 0, 64+items*8+events*12)
	b = codec.AppendFlags(b, hasSince)
	b = codec.AppendVarint(b, since)
	b = codec.AppendUvarint(b, uint64(items))
	return &partEncoder{b: b}
}

// item writes it, whose key follows the key written before.
func (w *partEncoder) item(it *keyItem) {
	b := w.b
	b = appendFrontCoded(b, w.prevSKU, it.SKU)
	b = appendFrontCoded(b, w.prevLoc, it.LocationID)
	w.prevSKU, w.prevLoc = it.SKU, it.LocationID
	opening := it.OpeningOnHand != 0 || it.OpeningAt != 0
	streaming := it.StreamingOnHand != 0
	b = codec.AppendFlags(b, it.HasOpening, it.HasStreaming, opening, streaming)
	if opening {
		b = codec.AppendVarint(b, it.OpeningOnHand)
		b = codec.AppendVarint(b, it.OpeningAt)
	}
	if streaming {
		b = codec.AppendVarint(b, it.StreamingOnHand)
	}
	b = codec.AppendUvarint(b, uint64(len(it.Events)))
	for _, e := range it.Events {
		b = appendID(b, w.prevID, e.ID)
		d := e.Time - w.prevTime // wraps around, and back in mergeEncoded
		ms := d%1000 == 0
		b = codec.AppendUvarint(b, uint64(e.Reason)<<1|uint64(boolBit(ms)))
		if ms {
			d /= 1000
		}
		b = codec.AppendVarint(b, d)
		b = codec.AppendVarint(b, e.Qty)
		w.prevID, w.prevTime = e.ID, e.Time
	}
	w.b = b
}

func boolBit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendFrontCoded writes s as the length of the prefix it shares with
// prev, then the rest.
func appendFrontCoded(b []byte, prev, s string) []byte {
	shared := commonPrefix(prev, s)
	b = codec.AppendUvarint(b, uint64(shared))
	return codec.AppendString(b, s[shared:])
}

// maxDigits is the widest decimal tail an id's difference is taken of.
const maxDigits = 18

// appendID writes id front-coded against prev: shared<<1 | numeric, then
// the rest of id, or (numeric) the difference of the decimal numbers that
// follow the shared prefix in both, which are of the same width.
func appendID(b []byte, prev, id string) []byte {
	shared := commonPrefix(prev, id)
	if a, ok := digits(prev[shared:]); ok && len(prev)-shared == len(id)-shared {
		if c, ok := digits(id[shared:]); ok {
			b = codec.AppendUvarint(b, uint64(shared)<<1|1)
			return codec.AppendVarint(b, int64(c)-int64(a))
		}
	}
	b = codec.AppendUvarint(b, uint64(shared)<<1)
	return codec.AppendString(b, id[shared:])
}

// digits returns the value of s, a decimal number of 1 to maxDigits
// digits, leading zeros allowed.
func digits(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > maxDigits {
		return 0, false
	}
	var v uint64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
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
	var sku, loc string
	var id []byte // the id read last
	var prevTime int64
	for i := 0; i < n && d.Err() == nil; i++ {
		var ok bool
		if sku, ok = readFrontCoded(d, sku); !ok {
			return errCorrupt
		}
		if loc, ok = readFrontCoded(d, loc); !ok {
			return errCorrupt
		}
		flags := d.Uvarint()
		o := keyItem{SKU: sku, LocationID: loc, HasOpening: codec.Flag(flags, 0), HasStreaming: codec.Flag(flags, 1)}
		if codec.Flag(flags, 2) {
			o.OpeningOnHand, o.OpeningAt = d.Varint(), d.Varint()
		}
		if codec.Flag(flags, 3) {
			o.StreamingOnHand = d.Varint()
		}
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
			if id, ok = readID(d, id); !ok {
				return errCorrupt
			}
			rm := d.Uvarint()
			dt := d.Varint()
			if rm&1 != 0 {
				dt *= 1000
			}
			prevTime += dt
			it.Events = append(it.Events, keyEvent{ID: string(id), Time: prevTime, Reason: event.Reason(rm >> 1), Qty: d.Varint()})
		}
	}
	if d.Done() != nil {
		return errCorrupt
	}
	return nil
}

// readFrontCoded reads what appendFrontCoded wrote after prev. A string
// that repeats prev is prev itself, not a copy.
func readFrontCoded(d *codec.Reader, prev string) (string, bool) {
	shared := d.Uvarint()
	if shared > uint64(len(prev)) {
		return "", false
	}
	rest := d.Bytes()
	if len(rest) == 0 && shared == uint64(len(prev)) {
		return prev, true
	}
	return prev[:shared] + string(rest), true
}

// readID reads what appendID wrote after prev into prev's buffer.
func readID(d *codec.Reader, prev []byte) ([]byte, bool) {
	h := d.Uvarint()
	shared := h >> 1
	if shared > uint64(len(prev)) {
		return prev, false
	}
	if h&1 == 0 {
		return append(prev[:shared], d.Bytes()...), true
	}
	width := len(prev) - int(shared)
	a, ok := digits(string(prev[shared:]))
	c := int64(a) + d.Varint()
	if !ok || c < 0 {
		return prev, false
	}
	out := strconv.AppendUint(prev[:shared], uint64(c), 10)
	if pad := width - (len(out) - int(shared)); pad > 0 {
		out = slices.Insert(out, int(shared), zeros[:pad]...)
	} else if pad < 0 {
		return prev, false
	}
	return out, true
}

var zeros = []byte(strings.Repeat("0", maxDigits))
