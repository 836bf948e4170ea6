package stock

import (
	"fmt"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
)

// ledgers is the stock of every key of one shard: one ledger.State per
// (sku, location). It is what the stock DoFn keeps in the shard's Beam state,
// encoded as a sequence of (sku, location, kind, bytes) records: a base
// holding every key whole (AppendBinary) and deltas holding the keys changed
// since (AppendChanged), which ApplyDelta lays over the base in order.
//
// A key's record in a delta is its whole state the first time the key is
// written (kindWhole), and after that only what changed
// (ledger.State.AppendChanges, kindChanges): a busy key's dedup memory,
// thousands of event ids, is written once, not on every event.
// Keys are decoded lazily: a bundle pays for parsing the keys it touches.
type ledgers struct {
	keys  map[event.Key]*ledgerEntry
	dirty []event.Key // the keys whose entry is dirty
}

// Kinds of record.
const (
	kindWhole   = 0 // ledger.State.AppendBinary
	kindChanges = 1 // ledger.State.AppendChanges, over the records before
)

type ledgerEntry struct {
	st      *ledger.State // decoded state, tracking its changes; nil until touched
	enc     *encoded      // the key's encoding while it is not decoded (st nil)
	dirty   bool          // st changed since it was last written
	written bool          // the key is in the base or a delta: changes can follow
}

// encoded is a key's whole encoding (raw) and the change records laid over
// it, in order. It lives apart from ledgerEntry so that a decoded key, the
// common case, has a smaller entry (figures: docs/benchmarks.md#figures-behind-the-code).
type encoded struct {
	raw     []byte
	pending [][]byte
}

// newLedgers returns an empty shard.
func newLedgers() *ledgers { return &ledgers{keys: map[event.Key]*ledgerEntry{}} }

// Len returns the number of keys.
func (l *ledgers) Len() int { return len(l.keys) }

// parseLedgers decodes the output of AppendBinary. It keeps references into b.
func parseLedgers(b []byte) (*ledgers, error) {
	l := newLedgers()
	if err := l.ApplyDelta(b); err != nil {
		return nil, err
	}
	return l, nil
}

// ApplyDelta lays the records of b (the output of AppendChanged or
// AppendBinary) over l, in order. It keeps references into b.
func (l *ledgers) ApplyDelta(b []byte) error {
	r := codec.NewReader(b)
	n := r.Len()
	for ; n > 0 && r.Err() == nil; n-- {
		k := event.Key{SKU: r.String(), LocationID: r.String()}
		kind, rec := r.Uvarint(), r.Bytes()
		e := l.keys[k]
		switch {
		case r.Err() != nil:
		case kind == kindWhole && e == nil:
			l.keys[k] = &ledgerEntry{enc: &encoded{raw: rec}, written: true}
		case kind == kindWhole:
			e.enc, e.st, e.dirty, e.written = &encoded{raw: rec}, nil, false, true
		case kind == kindChanges && e != nil && e.st != nil:
			if err := e.st.ApplyChanges(rec); err != nil {
				return fmt.Errorf("stock: decode changes of %v: %w", k, err)
			}
		case kind == kindChanges && e != nil:
			e.enc.pending = append(e.enc.pending, rec)
		default:
			return fmt.Errorf("stock: decode ledgers: record of kind %d for %v, which has no whole record before it", kind, k)
		}
	}
	if r.Err() != nil {
		return fmt.Errorf("stock: decode ledgers: %w", r.Err())
	}
	return nil
}

// decode returns the state of e, decoding it if it is not yet.
func (e *ledgerEntry) decode(k event.Key) (*ledger.State, error) {
	if e.st != nil {
		return e.st, nil
	}
	st := new(ledger.State)
	if err := st.UnmarshalBinary(e.enc.raw); err != nil {
		return nil, fmt.Errorf("stock: decode ledger of %v: %w", k, err)
	}
	for _, p := range e.enc.pending {
		if err := st.ApplyChanges(p); err != nil {
			return nil, fmt.Errorf("stock: decode changes of %v: %w", k, err)
		}
	}
	st.TrackChanges()
	e.st, e.enc = st, nil
	return st, nil
}

// Get returns the ledger of k for changing, creating it from the reference
// data (snapshot or empty) if the shard has never seen k. threshold is the
// key's threshold, used to classify a snapshot's starting stock.
func (l *ledgers) Get(k event.Key, ref *refData, threshold int64) (*ledger.State, error) {
	e := l.keys[k]
	if e == nil {
		var st *ledger.State
		if ref != nil {
			k, st = ref.initial(k, threshold) // k: the snapshot's strings, not the event's
		} else {
			st = &ledger.State{}
		}
		st.TrackChanges()
		l.keys[k] = &ledgerEntry{st: st, dirty: true}
		l.dirty = append(l.dirty, k)
		return st, nil
	}
	st, err := e.decode(k)
	if err != nil {
		return nil, err
	}
	if !e.dirty {
		e.dirty = true
		l.dirty = append(l.dirty, k)
	}
	return st, nil
}

// Peek returns the ledger of k without marking it changed, or nil.
func (l *ledgers) Peek(k event.Key) (*ledger.State, error) {
	e := l.keys[k]
	if e == nil {
		return nil, nil
	}
	return e.decode(k)
}

// AppendBinary appends the encoded shard to b, every key whole. Keys not
// decoded then refer to the new encoding, so the previous buffers can be
// collected.
func (l *ledgers) AppendBinary(b []byte) ([]byte, error) {
	w := entryWriter{b: codec.AppendUvarint(b, uint64(len(l.keys)))}
	for k, e := range l.keys {
		if err := w.whole(k, e); err != nil {
			return nil, err
		}
	}
	l.dirty = l.dirty[:0]
	return w.done(), nil
}

// AppendChanged appends the keys changed since the last AppendBinary or
// AppendChanged to b, in the same format, and reports how many there were.
func (l *ledgers) AppendChanged(b []byte) ([]byte, int) {
	n := 0
	for _, k := range l.dirty {
		if e := l.keys[k]; e != nil && e.dirty {
			n++
		}
	}
	w := entryWriter{b: codec.AppendUvarint(b, uint64(n))}
	for _, k := range l.dirty {
		e := l.keys[k]
		if e == nil || !e.dirty {
			continue
		}
		if e.written {
			w.b = appendKey(w.b, k, kindChanges)
			w.scratch = e.st.AppendChanges(w.scratch[:0])
			w.b = codec.AppendBytes(w.b, w.scratch)
		} else {
			_ = w.whole(k, e) // e is decoded: no error
		}
		e.dirty, e.written = false, true
	}
	l.dirty = l.dirty[:0]
	return w.done(), n
}

func appendKey(b []byte, k event.Key, kind uint64) []byte {
	b = codec.AppendString(b, k.SKU)
	b = codec.AppendString(b, k.LocationID)
	return codec.AppendUvarint(b, kind)
}

// entryWriter appends records. done points each undecoded entry written at
// its bytes in the result.
type entryWriter struct {
	b, scratch []byte
	spans      []entrySpan
}

type entrySpan struct {
	e          *ledgerEntry
	start, end int
}

// whole appends k's whole record: encoded afresh from its state if decoded
// (which then tracks changes from here), copied if not and unchanged since
// read, decoded for the encoding if it has changes pending.
func (w *entryWriter) whole(k event.Key, e *ledgerEntry) error {
	w.b = appendKey(w.b, k, kindWhole)
	var raw []byte
	switch {
	case e.st != nil:
		w.scratch = e.st.AppendBinary(w.scratch[:0])
		e.st.TrackChanges()
		raw = w.scratch
	case len(e.enc.pending) == 0:
		raw = e.enc.raw
	default:
		st, err := (&ledgerEntry{enc: e.enc}).decode(k)
		if err != nil {
			return err
		}
		w.scratch = st.AppendBinary(w.scratch[:0])
		raw = w.scratch
	}
	e.dirty, e.written = false, true
	w.b = codec.AppendBytes(w.b, raw)
	if e.st == nil {
		w.spans = append(w.spans, entrySpan{e, len(w.b) - len(raw), len(w.b)})
	}
	return nil
}

func (w *entryWriter) done() []byte {
	for _, s := range w.spans {
		*s.e.enc = encoded{raw: w.b[s.start:s.end:s.end]}
	}
	return w.b
}

// Has reports whether the shard holds a ledger of k.
func (l *ledgers) Has(k event.Key) bool { return l.keys[k] != nil }

// keysOf returns the keys a threshold change concerns in this shard: its
// key, or for a (sku, *) change every key of the SKU that the shard holds or
// that ref's snapshot has and mine accepts.
func (l *ledgers) keysOf(c *ledger.Change, ref *refData, mine func(event.Key) bool) []event.Key {
	if !c.Wild() {
		return []event.Key{c.Key()}
	}
	var out []event.Key
	for k := range l.keys {
		if k.SKU == c.SKU {
			out = append(out, k)
		}
	}
	for k := range ref.Stock.OfSKU(c.SKU) {
		if l.keys[k] == nil && mine(k) {
			out = append(out, k)
		}
	}
	return out
}
