package stock

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
)

func init() {
	register.DoFn6x1[context.Context, state.Provider, int, shardBatch, reference, func(commit.Commit), error](&stockFn{})
	register.DoFn5x1[context.Context, state.Provider, int, shardBatch, func(commit.Commit), error](&stockInProcessFn{})
	register.DoFn6x1[context.Context, state.Provider, string, shardBatch, reference, func(commit.Commit), error](&keyStockFn{})
	register.Function3x0(keyEventsFn)
	register.Emitter2[string, shardBatch]()
}

// Apply is a composite transform that applies adjustments to the stock
// of their (sku, location) key with the ledger semantics (internal/ledger).
// It expects a PCollection of KV<int, shardBatch> from DecodeEvents and a
// PCollection of one reference (thresholds and snapshot) as a side input.
// horizon bounds the dedup memory per key (0: ledger.DefaultHorizon).
//
// It returns a PCollection of Commit, one per input element: the
// adjustments (every event, APPLIED/SUPERSEDED/DUPLICATE), stock_levels
// (every change of on-hand), alerts (every change of severity) and dead
// letters (events too late to deduplicate) that the element's records
// caused, with their ack ids. commit.Write stores them; Unpack splits them.
//
// State is one value per shard holding the ledgers of the shard's keys
// (state.Value, which Dataflow runs for Go); see ledgers.
//
// On Prism, run the job with the experiment PrismNoSplitExperiment
// (prism.go).
func Apply(s beam.Scope, events, ref beam.PCollection, horizon time.Duration) beam.PCollection {
	s = s.Scope("stock.Apply")
	return beam.ParDo(s, &stockFn{Horizon: horizon}, events, beam.SideInput{Input: ref})
}

// ApplyInProcess is Apply with the reference data handed over in
// memory by ReadReferenceInProcess (handoff, its id) rather than as a side
// input: for Prism in this process. Its first bundles wait until the data
// is read.
func ApplyInProcess(s beam.Scope, events beam.PCollection, handoff string, horizon time.Duration) beam.PCollection {
	s = s.Scope("stock.Apply")
	return beam.ParDo(s, &stockInProcessFn{Horizon: horizon, Handoff: handoff}, events)
}

// stockInProcessFn is stockFn without the side input: the same state, the
// reference data from a handoff in this process (ReadReferenceInProcess).
type stockInProcessFn struct {
	Horizon time.Duration
	Handoff string

	// stockFn's state, by the same names.
	Gen    state.Value[int64]
	Ledger state.Value[[]byte]
	Delta  state.Bag[[]byte]
	Live   state.Value[[]byte]

	fn *stockFn
}

func (f *stockInProcessFn) Setup() {
	f.fn = &stockFn{Horizon: f.Horizon, Gen: f.Gen, Ledger: f.Ledger, Delta: f.Delta, Live: f.Live}
	f.fn.Setup()
}

func (f *stockInProcessFn) ProcessElement(ctx context.Context, sp state.Provider, shard int, batch shardBatch,
	emit func(commit.Commit)) error {
	ref, err := waitReference(ctx, f.Handoff)
	if err != nil {
		return err
	}
	return f.fn.process(ctx, sp, shard, batch, ref, emit)
}

// stockFn keeps the ledgers of one shard in Beam state: a base (Ledger,
// every key of the shard) and a bag of deltas (Delta, the keys each element
// changed), so that an element writes what it changed, not the whole shard.
// When the deltas outgrow the base (or deltaFloor), the element writes a new
// base and clears the bag: the bytes written stay within about twice what
// changed, and a read within twice the shard.
//
// Gen is a random id written with every change of Ledger or Delta. Each DoFn
// instance caches the decoded ledgers of the shards it processed with the
// Gen it wrote; when the committed Gen is still that one, the ledger bytes
// need not be read and parsed again. A failed bundle leaves the committed
// Gen different from the cached one, so the cache is never trusted past a
// failure.
type stockFn struct {
	Horizon time.Duration

	Gen    state.Value[int64]
	Ledger state.Value[[]byte]
	Delta  state.Bag[[]byte]
	// Live is the shard's live threshold rules (ledger.Live), written
	// only when a threshold change changes them.
	Live state.Value[[]byte]

	cache map[int]*shardCache
	core  stockCore
}

type shardCache struct {
	gen         int64
	l           *ledgers
	live        *ledger.Live
	base, delta int // bytes of the stored base and of the deltas since
}

// deltaFloor is the deltas' size below which a shard's base is not
// rewritten, however small it is (a variable for tests).
var deltaFloor = 64 << 10

// trustCache is false in tests that make every element read the state.
var trustCache = true

func (f *stockFn) Setup() {
	f.cache = map[int]*shardCache{}
	f.core.setup(f.Horizon)
}

func (f *stockFn) ProcessElement(ctx context.Context, sp state.Provider, shard int, batch shardBatch, refIn reference,
	emit func(commit.Commit)) error {
	ref, err := refIn.Data()
	if err != nil {
		return err
	}
	return f.process(ctx, sp, shard, batch, ref, emit)
}

// process applies batch to the shard's ledgers and emits what it caused.
func (f *stockFn) process(ctx context.Context, sp state.Provider, shard int, batch shardBatch, ref *refData,
	emit func(commit.Commit)) error {
	gen, ok, err := f.Gen.Read(sp)
	if err != nil {
		return fmt.Errorf("stock: read gen of shard %d: %w", shard, err)
	}
	f.core.stateRead.Inc(ctx, 8)
	c := f.cache[shard]
	if c == nil || !ok || c.gen != gen || !trustCache {
		if c, err = f.read(sp, shard); err != nil {
			return err
		}
		f.core.stateRead.Inc(ctx, int64(c.base+c.delta))
		f.cache[shard] = c
	}
	c.gen = 0 // changing: not trusted until written

	out, err := f.core.apply(ctx, batch, ref, c.live, func(k event.Key, th int64) (*ledger.State, error) {
		return c.l.Get(k, ref, th)
	})
	if err != nil {
		return err
	}
	if len(batch.Updates) > 0 {
		upd, changed, err := f.core.applyUpdates(batch.Updates, ref, c.live, func(u *thresholdUpdate) []event.Key {
			return c.l.keysOf(&u.Change, ref, func(k event.Key) bool { return k.Shard(u.Shards) == shard })
		}, func(k event.Key, th int64) (*ledger.State, error) {
			if !c.l.Has(k) && !ref.Has(k) {
				return nil, nil
			}
			return c.l.Get(k, ref, th)
		})
		if err != nil {
			return err
		}
		out.Merge(&upd)
		if changed {
			b := c.live.AppendBinary(nil)
			if err := f.Live.Write(sp, b); err != nil {
				return fmt.Errorf("stock: write thresholds of shard %d: %w", shard, err)
			}
			f.core.stateWritten.Inc(ctx, int64(len(b)))
		}
	}

	newGen := rand.Int64() | 1
	written, err := f.write(sp, shard, c)
	if err != nil {
		return err
	}
	f.core.stateWritten.Inc(ctx, int64(written+8))
	if err := f.Gen.Write(sp, newGen); err != nil {
		return fmt.Errorf("stock: write gen of shard %d: %w", shard, err)
	}
	c.gen = newGen
	emit(out)
	return nil
}

// read reads the ledgers and the live thresholds of a shard from its state.
func (f *stockFn) read(sp state.Provider, shard int) (*shardCache, error) {
	c := &shardCache{l: newLedgers(), live: &ledger.Live{}}
	raw, ok, err := f.Ledger.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("stock: read ledgers of shard %d: %w", shard, err)
	}
	if ok {
		if c.l, err = parseLedgers(raw); err != nil {
			return nil, fmt.Errorf("stock: shard %d: %w", shard, err)
		}
		c.base = len(raw)
	}
	deltas, _, err := f.Delta.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("stock: read deltas of shard %d: %w", shard, err)
	}
	for _, d := range deltas {
		if err := c.l.ApplyDelta(d); err != nil {
			return nil, fmt.Errorf("stock: shard %d: %w", shard, err)
		}
		c.delta += len(d)
	}
	rawLive, ok, err := f.Live.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("stock: read thresholds of shard %d: %w", shard, err)
	}
	if ok {
		if err := c.live.UnmarshalBinary(rawLive); err != nil {
			return nil, fmt.Errorf("stock: shard %d: %w", shard, err)
		}
	}
	return c, nil
}

// write stores the keys of the shard that changed: as one more delta, or,
// once the deltas would outgrow the base, as a new base. It returns the
// bytes written.
func (f *stockFn) write(sp state.Provider, shard int, c *shardCache) (int, error) {
	d, n := c.l.AppendChanged(nil)
	if n == 0 {
		return 0, nil
	}
	if c.delta+len(d) <= max(c.base, deltaFloor) {
		if err := f.Delta.Add(sp, d); err != nil {
			return 0, fmt.Errorf("stock: write delta of shard %d: %w", shard, err)
		}
		c.delta += len(d)
		return len(d), nil
	}
	b, err := c.l.AppendBinary(nil)
	if err != nil {
		return 0, fmt.Errorf("stock: encode ledgers of shard %d: %w", shard, err)
	}
	if err := f.Ledger.Write(sp, b); err != nil {
		return 0, fmt.Errorf("stock: write ledgers of shard %d: %w", shard, err)
	}
	if err := f.Delta.Clear(sp); err != nil {
		return 0, fmt.Errorf("stock: clear deltas of shard %d: %w", shard, err)
	}
	c.base, c.delta = len(b), 0
	return len(b), nil
}

// stockCore is what the shard and the per-key stock DoFns share: the ledger
// rules applied to a batch of records, the metrics, and a processing clock.
type stockCore struct {
	horizon  time.Duration
	lastProc int64
	applied  beam.Counter
	dups     beam.Counter
	dead     beam.Counter
	supers   beam.Counter
	// stateRead and stateWritten count the bytes of Beam state the stage
	// reads and writes (metricStateBytesRead, metricStateBytesWritten).
	stateRead    beam.Counter
	stateWritten beam.Counter
}

// Metric names of the stock stage's state I/O, namespace "stream": bytes of
// Beam state read and written. Per event they stay flat as a key's history
// grows (TestHotKeyStateIO).
const (
	metricStateBytesRead    = "state_bytes_read"
	metricStateBytesWritten = "state_bytes_written"
)

func (c *stockCore) setup(horizon time.Duration) {
	c.horizon = horizon
	c.applied = beam.NewCounter(commit.MetricNamespace, commit.MetricApplied)
	c.dups = beam.NewCounter(commit.MetricNamespace, commit.MetricDuplicates)
	c.dead = beam.NewCounter(commit.MetricNamespace, commit.MetricDeadLettered)
	c.supers = beam.NewCounter(commit.MetricNamespace, commit.MetricSuperseded)
	c.stateRead = beam.NewCounter(commit.MetricNamespace, metricStateBytesRead)
	c.stateWritten = beam.NewCounter(commit.MetricNamespace, metricStateBytesWritten)
}

// now returns a processing time that never goes back and moves at least
// 1 µs per call, so that the last stock_levels row of a key by processed_at
// is its latest.
func (c *stockCore) now() time.Time {
	t := max(time.Now().UnixMicro(), c.lastProc+1)
	c.lastProc = t
	return time.UnixMicro(t).UTC()
}

// apply applies batch's records in order to the ledgers that get returns
// (for changing), and returns the rows and ack ids they caused.
func (c *stockCore) apply(ctx context.Context, batch shardBatch, ref *refData, live *ledger.Live,
	get func(k event.Key, threshold int64) (*ledger.State, error)) (commit.Commit, error) {
	var applied, dups, dead, supers int64
	out := commit.Commit{Adjustments: make([]warehouse.AdjustmentRow, 0, len(batch.Records))}
	for i := range batch.Records {
		rec := &batch.Records[i]
		if rec.AckID != "" {
			out.Acks = append(out.Acks, rec.AckID)
		}
		a := &rec.Adj
		k := a.Key()
		th := ledger.Effective(k, ref.Thresholds, ref.Live, live)
		st, err := get(k, th)
		if err != nil {
			return commit.Commit{}, err
		}
		var res ledger.Result
		if rec.Attributes[event.AttrLateChecked] != "" {
			res = st.ApplyChecked(a, th, c.horizon) // `inventory replay-late` checked its id
		} else {
			res = st.Apply(a, th, c.horizon)
		}
		now := c.now()
		switch res.Outcome {
		case ledger.TooLate:
			dead++
			out.DeadLetters = append(out.DeadLetters, tooLateDeadLetter(rec, now))
			continue
		case ledger.Duplicate:
			dups++
		case ledger.Superseded:
			applied++ // accepted, without effect on on-hand
			supers++
		default:
			applied++
		}
		out.Adjustments = append(out.Adjustments, adjustmentRow(rec, res.Outcome, now))
		if res.Changed() {
			out.Levels = append(out.Levels, stockLevelRow(a, res, th, st.Severity, now))
		}
		if res.Alert {
			out.Alerts = append(out.Alerts, alertRow(a, res, th, now))
		}
	}

	c.applied.Inc(ctx, applied)
	c.dups.Inc(ctx, dups)
	if dead > 0 {
		c.dead.Inc(ctx, dead)
	}
	if supers > 0 {
		c.supers.Inc(ctx, supers)
	}
	return out, nil
}

// stockKey is the state key of (sku, location) in ApplyPerKey: the SKU,
// a space and the location. The contract forbids blanks in either, so the
// key is unambiguous, and it reads well in Dataflow's monitoring.
func stockKey(k event.Key) string { return k.SKU + " " + k.LocationID }

// KeyEvents is a composite transform that re-keys DecodeEvents' output by
// stock key. It expects a PCollection of KV<int, shardBatch> and returns a
// PCollection of KV<string, shardBatch>, one element per key of each input
// element (keyed by stockKey), its records in arrival order.
func KeyEvents(s beam.Scope, events beam.PCollection) beam.PCollection {
	s = s.Scope("stock.KeyEvents")
	return beam.ParDo(s, keyEventsFn, events)
}

func keyEventsFn(_ int, sh shardBatch, emit func(string, shardBatch)) {
	if len(sh.Records) == 1 { // Dataflow: one message per element
		emit(stockKey(sh.Records[0].Adj.Key()), sh)
		return
	}
	byKey := map[event.Key][]eventRecord{}
	var order []event.Key
	for _, rec := range sh.Records {
		k := rec.Adj.Key()
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], rec)
	}
	for _, k := range order {
		emit(stockKey(k), shardBatch{Records: byKey[k]})
	}
}
