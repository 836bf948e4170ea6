package stock

import (
	"fmt"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
)

// ledgers is the stock of every key of one shard: one ledger.State per
// (sku, location). It is what the stock DoFn keeps in the shard's Beam state,
// encoded as a sequence of (sku, location, ledger.State.AppendBinary) records:
// a base holding every key (AppendBinary) and deltas holding the keys changed
// since (AppendChanged), which ApplyDelta lays over the base in order.
// Keys are decoded lazily: a bundle pays for parsing the keys it touches.
type ledgers struct {
	keys  map[event.Key]*ledgerEntry
	dirty []event.Key // the keys whose entry is dirty
}

type ledgerEntry struct {
	raw   []byte        // encoded state, valid unless dirty
	st    *ledger.State // decoded state, nil until touched
	dirty bool          // st changed since raw was encoded
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
// AppendBinary) over l: each replaces the ledger of its key. It keeps
// references into b.
func (l *ledgers) ApplyDelta(b []byte) error {
	r := codec.NewReader(b)
	n := r.Len()
	for ; n > 0 && r.Err() == nil; n-- {
		k := event.Key{SKU: r.String(), LocationID: r.String()}
		if e := l.keys[k]; e != nil {
			e.raw, e.st, e.dirty = r.Bytes(), nil, false
			continue
		}
		l.keys[k] = &ledgerEntry{raw: r.Bytes()}
	}
	if r.Err() != nil {
		return fmt.Errorf("stock: decode ledgers: %w", r.Err())
	}
	return nil
}

// Get returns the ledger of k for changing, creating it from the reference
// data (snapshot or empty) if the shard has never seen k. threshold is the
// key's threshold, used to classify a snapshot's starting stock.
func (l *ledgers) Get(k event.Key, ref *RefData, threshold int64) (*ledger.State, error) {
	e := l.keys[k]
	if e == nil {
		var st *ledger.State
		if ref != nil {
			st = ref.Initial(k, threshold)
		} else {
			st = &ledger.State{}
		}
		l.keys[k] = &ledgerEntry{st: st, dirty: true}
		l.dirty = append(l.dirty, k)
		return st, nil
	}
	if e.st == nil {
		st := new(ledger.State)
		if err := st.UnmarshalBinary(e.raw); err != nil {
			return nil, fmt.Errorf("stock: decode ledger of %v: %w", k, err)
		}
		e.st = st
	}
	if !e.dirty {
		e.dirty = true
		l.dirty = append(l.dirty, k)
	}
	return e.st, nil
}

// Peek returns the ledger of k without marking it changed, or nil.
func (l *ledgers) Peek(k event.Key) (*ledger.State, error) {
	e := l.keys[k]
	if e == nil {
		return nil, nil
	}
	if e.st == nil {
		st := new(ledger.State)
		if err := st.UnmarshalBinary(e.raw); err != nil {
			return nil, fmt.Errorf("stock: decode ledger of %v: %w", k, err)
		}
		e.st = st
	}
	return e.st, nil
}

// AppendBinary appends the encoded shard to b. Entries then refer to the
// new encoding, so the previous buffer can be collected.
func (l *ledgers) AppendBinary(b []byte) []byte {
	w := entryWriter{b: codec.AppendUvarint(b, uint64(len(l.keys)))}
	for k, e := range l.keys {
		w.add(k, e)
	}
	l.dirty = l.dirty[:0]
	return w.done()
}

// AppendChanged appends the keys changed since the last AppendBinary or
// AppendChanged to b, in the same format, and reports how many there were.
// Their entries then refer to the new encoding.
func (l *ledgers) AppendChanged(b []byte) ([]byte, int) {
	n := 0
	for _, k := range l.dirty {
		if e := l.keys[k]; e != nil && e.dirty {
			n++
		}
	}
	w := entryWriter{b: codec.AppendUvarint(b, uint64(n))}
	for _, k := range l.dirty {
		if e := l.keys[k]; e != nil && e.dirty {
			w.add(k, e)
		}
	}
	l.dirty = l.dirty[:0]
	return w.done(), n
}

// entryWriter appends (sku, location, ledger) records: a changed ledger
// encoded afresh, any other copied. done points each entry written at its
// bytes in the result.
type entryWriter struct {
	b, scratch []byte
	spans      []entrySpan
}

type entrySpan struct {
	e          *ledgerEntry
	start, end int
}

func (w *entryWriter) add(k event.Key, e *ledgerEntry) {
	w.b = codec.AppendString(w.b, k.SKU)
	w.b = codec.AppendString(w.b, k.LocationID)
	raw := e.raw
	if e.dirty {
		w.scratch = e.st.AppendBinary(w.scratch[:0])
		raw = w.scratch
		e.dirty = false
	}
	w.b = codec.AppendBytes(w.b, raw)
	w.spans = append(w.spans, entrySpan{e, len(w.b) - len(raw), len(w.b)})
}

func (w *entryWriter) done() []byte {
	for _, s := range w.spans {
		s.e.raw = w.b[s.start:s.end:s.end]
	}
	return w.b
}

// Has reports whether the shard holds a ledger of k.
func (l *ledgers) Has(k event.Key) bool { return l.keys[k] != nil }

// keysOf returns the keys a threshold change concerns in this shard: its
// key, or for a (sku, *) change every key of the SKU that the shard holds or
// that ref's snapshot has and mine accepts.
func (l *ledgers) keysOf(c *ledger.Change, ref *RefData, mine func(event.Key) bool) []event.Key {
	if !c.Wild() {
		return []event.Key{c.Key()}
	}
	var out []event.Key
	for k := range l.keys {
		if k.SKU == c.SKU {
			out = append(out, k)
		}
	}
	for k := range ref.Stock {
		if k.SKU == c.SKU && l.keys[k] == nil && mine(k) {
			out = append(out, k)
		}
	}
	return out
}
