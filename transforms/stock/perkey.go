package stock

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/transforms/commit"
)

// ApplyPerKey is Apply with the state of each (sku, location) key
// apart: it expects a PCollection of KV<string, shardBatch> from KeyEvents and the
// reference side input, and returns a PCollection of Commit, one per input
// element. An element writes only what it changed in its own key's ledger,
// and the stage scales out by key: the layout for Dataflow, where each
// element is one message.
func ApplyPerKey(s beam.Scope, keyed, ref beam.PCollection, horizon time.Duration) beam.PCollection {
	s = s.Scope("stock.ApplyPerKey")
	return beam.ParDo(s, &keyStockFn{Horizon: horizon}, keyed, beam.SideInput{Input: ref})
}

// keyStockFn keeps the ledger of one key in Beam state, as stockFn keeps a
// shard's: a base (Base, the whole ledger.State) and a bag of change records
// since (Changes, ledger.State.AppendChanges), so that an event writes what
// it changed (its id and the key's counters), not the key's whole dedup
// memory. A best seller with 100,000 events in the horizon holds 100,000 ids
// (about 4 MB); rewriting them on every event would make a hot key cost
// megabytes per event. When the changes outgrow the base (or
// keyChangesFloor), the element writes a new base and clears the bag, so the
// bytes written per event stay within about twice what it changed.
//
// Gen is a random id written with every change, as in stockFn: each DoFn
// instance caches the decoded ledgers of the keys it processed last
// (keyCacheSize) with the Gen it wrote, and while the committed Gen is that
// one it reads 8 bytes of state per element, not the ledger. A failed
// bundle leaves the committed Gen different, so the cache is never trusted
// past a failure. State kinds: Value and Bag, which Dataflow runs for Go
// (docs/beam-notes.md).
type keyStockFn struct {
	Horizon time.Duration

	Gen     state.Value[int64]
	Base    state.Value[[]byte]
	Changes state.Bag[[]byte]
	// Ledger is the key's whole ledger as jobs before Base and Changes
	// kept it: read when Base is empty, and cleared by the first write, so
	// that a job updated in place (--update) keeps its stock.
	Ledger state.Value[[]byte]
	// Live is the key's live threshold rules: its (sku, location) rule and
	// its SKU's (sku, *) rule, as RouteThresholdUpdates sent them.
	Live state.Value[[]byte]

	cache map[string]*keyCache
	core  stockCore
}

// keyCache is one key's decoded state in a DoFn instance.
type keyCache struct {
	gen         int64
	st          *ledger.State // nil: the key has no stored ledger
	known       bool          // the key has a stored ledger or a snapshot
	legacy      bool          // Ledger holds a ledger to clear
	live        *ledger.Live
	base, delta int // bytes of the stored base and of the changes since
}

// keyChangesFloor is the changes' size below which a key's base is not
// rewritten, however small it is (a variable for tests).
var keyChangesFloor = 4 << 10

// keyCacheSize bounds the keys whose decoded ledgers a DoFn instance keeps.
const keyCacheSize = 10_000

func (f *keyStockFn) Setup() {
	f.cache = map[string]*keyCache{}
	f.core.setup(f.Horizon)
}

func (f *keyStockFn) ProcessElement(ctx context.Context, sp state.Provider, key string, batch shardBatch, refIn reference,
	emit func(commit.Commit)) error {
	ref, err := refIn.Data()
	if err != nil {
		return err
	}
	gen, ok, err := f.Gen.Read(sp)
	if err != nil {
		return fmt.Errorf("stock: read gen of %q: %w", key, err)
	}
	f.core.stateRead.Inc(ctx, 8)
	c := f.cache[key]
	if c == nil || !ok || c.gen != gen || !trustCache {
		if c, err = f.read(ctx, sp, key); err != nil {
			return err
		}
		f.remember(key, c)
	}
	c.gen = 0 // changing: not trusted until written

	fresh := false   // the ledger was made in this element
	touched := false // the element got the ledger, for changing
	get := func(k event.Key, th int64) (*ledger.State, error) {
		if stockKey(k) != key {
			return nil, fmt.Errorf("stock: a record of %v in the element of key %q", k, key)
		}
		touched = true
		if c.st == nil {
			c.known = ref.Has(k)
			c.st = ref.Initial(k, th)
			fresh = true
		}
		return c.st, nil
	}
	out, err := f.core.apply(ctx, batch, ref, c.live, get)
	if err != nil {
		return err
	}
	if len(batch.Updates) > 0 {
		upd, changed, err := f.core.applyUpdates(batch.Updates, ref, c.live, func(*thresholdUpdate) []event.Key {
			sku, loc, _ := strings.Cut(key, " ")
			return []event.Key{{SKU: sku, LocationID: loc}}
		}, func(k event.Key, th int64) (*ledger.State, error) {
			s, err := get(k, th)
			if err != nil || (len(batch.Records) == 0 && !c.known) {
				if fresh {
					c.st = nil // no stock yet: nothing to re-evaluate or store
				}
				return nil, err
			}
			return s, nil
		})
		if err != nil {
			return err
		}
		out.Merge(&upd)
		if changed {
			b := c.live.AppendBinary(nil)
			if err := f.Live.Write(sp, b); err != nil {
				return fmt.Errorf("stock: write thresholds of %q: %w", key, err)
			}
			f.core.stateWritten.Inc(ctx, int64(len(b)))
		}
	}
	if c.st != nil && touched {
		if err := f.write(ctx, sp, key, c, fresh); err != nil {
			return err
		}
		c.known = true // stored: a threshold change re-evaluates it from now on
	}
	newGen := rand.Int64() | 1
	if err := f.Gen.Write(sp, newGen); err != nil {
		return fmt.Errorf("stock: write gen of %q: %w", key, err)
	}
	f.core.stateWritten.Inc(ctx, 8)
	c.gen = newGen
	emit(out)
	return nil
}

// remember caches c for key, forgetting other keys once the cache is full.
func (f *keyStockFn) remember(key string, c *keyCache) {
	if len(f.cache) >= keyCacheSize {
		n := 0
		for k := range f.cache { // map order: a random tenth
			if n >= keyCacheSize/10 {
				break
			}
			delete(f.cache, k)
			n++
		}
	}
	f.cache[key] = c
}

// read reads a key's ledger and live thresholds from its state.
func (f *keyStockFn) read(ctx context.Context, sp state.Provider, key string) (*keyCache, error) {
	c := &keyCache{live: &ledger.Live{}}
	var read int64
	raw, ok, err := f.Base.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("stock: read ledger of %q: %w", key, err)
	}
	if !ok {
		if raw, ok, err = f.Ledger.Read(sp); err != nil {
			return nil, fmt.Errorf("stock: read ledger of %q: %w", key, err)
		}
		c.legacy = ok
	}
	if ok {
		c.st = new(ledger.State)
		if err := c.st.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("stock: decode ledger of %q: %w", key, err)
		}
		c.known, c.base = true, len(raw)
		read += int64(len(raw))
	}
	changes, _, err := f.Changes.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("stock: read changes of %q: %w", key, err)
	}
	if len(changes) > 0 && c.st == nil {
		return nil, fmt.Errorf("stock: %q has %d change records and no ledger", key, len(changes))
	}
	for _, ch := range changes {
		if err := c.st.ApplyChanges(ch); err != nil {
			return nil, fmt.Errorf("stock: decode changes of %q: %w", key, err)
		}
		c.delta += len(ch)
	}
	read += int64(c.delta)
	if c.st != nil {
		c.st.TrackChanges()
	}
	rawLive, ok, err := f.Live.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("stock: read thresholds of %q: %w", key, err)
	}
	if ok {
		if err := c.live.UnmarshalBinary(rawLive); err != nil {
			return nil, fmt.Errorf("stock: %q: %w", key, err)
		}
		read += int64(len(rawLive))
	}
	f.core.stateRead.Inc(ctx, read)
	return c, nil
}

// write stores what changed in the key's ledger: as one more change record,
// or, for a new ledger or once the changes would outgrow the base, as a new
// base.
func (f *keyStockFn) write(ctx context.Context, sp state.Provider, key string, c *keyCache, fresh bool) error {
	if !fresh && !c.legacy {
		ch := c.st.AppendChanges(nil)
		if c.delta+len(ch) <= max(c.base, keyChangesFloor) {
			if err := f.Changes.Add(sp, ch); err != nil {
				return fmt.Errorf("stock: write changes of %q: %w", key, err)
			}
			c.delta += len(ch)
			f.core.stateWritten.Inc(ctx, int64(len(ch)))
			return nil
		}
	}
	b := c.st.AppendBinary(nil)
	if err := f.Base.Write(sp, b); err != nil {
		return fmt.Errorf("stock: write ledger of %q: %w", key, err)
	}
	if c.delta > 0 {
		if err := f.Changes.Clear(sp); err != nil {
			return fmt.Errorf("stock: clear changes of %q: %w", key, err)
		}
	}
	if c.legacy {
		if err := f.Ledger.Clear(sp); err != nil {
			return fmt.Errorf("stock: clear old ledger of %q: %w", key, err)
		}
		c.legacy = false
	}
	c.st.TrackChanges()
	c.base, c.delta = len(b), 0
	f.core.stateWritten.Inc(ctx, int64(len(b)))
	return nil
}
