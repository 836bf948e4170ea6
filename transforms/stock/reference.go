package stock

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/registry"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/thresholds"
)

func init() {
	beam.RegisterType(reflect.TypeOf(reference{}))
	beam.RegisterCoder(reflect.TypeOf(reference{}), encodeReference, decodeReference)
	register.DoFn3x1[context.Context, []byte, func(reference), error](&readReferenceFn{})
	register.Emitter1[reference]()
}

// reference is the reference data the stock DoFn looks keys up in: the
// reorder thresholds and the starting snapshot. It is a side input. Its coder
// keeps it as raw bytes plus a digest, and Lookup parses it once per worker
// per digest, so a large snapshot is not decoded again for every bundle.
type reference struct {
	Digest string // sha256 of Raw
	Raw    []byte
}

// snapshotItem is one key of the starting snapshot.
type snapshotItem struct {
	SKU, LocationID string
	OnHand          int64
	AsOf            int64  // Unix µs; 0: the snapshot's
	State           []byte // optional whole ledger (ledger.State.AppendBinary)
}

// stockItem is a snapshotItem without its key: the parsed snapshot holds
// one per key, a million at 1M keys, so it keeps no copy of the key's
// strings (which parseReference interns).
type stockItem struct {
	OnHand int64
	AsOf   int64
	State  []byte
}

// item returns it as the snapshotItem of k.
func (it stockItem) item(k event.Key) snapshotItem {
	return snapshotItem{SKU: k.SKU, LocationID: k.LocationID, OnHand: it.OnHand, AsOf: it.AsOf, State: it.State}
}

// refData is the parsed reference.
type refData struct {
	Thresholds *ledger.Thresholds
	// AsOf is the snapshot's time (Unix µs) and Stock its items per key.
	AsOf  int64
	Stock stockIndex
	// Live is the live threshold changes restored at start
	// (threshold_changes), over Thresholds.
	Live *ledger.Live
}

// Threshold returns the threshold of k: (sku, location), (sku, *), default,
// with the restored live changes over the file's rules.
func (d *refData) Threshold(k event.Key) int64 { return ledger.Effective(k, d.Thresholds, d.Live) }

// Has reports whether the snapshot (or the restore) has a ledger of k.
func (d *refData) Has(k event.Key) bool {
	_, ok := d.Stock.Get(k)
	return ok
}

// Initial returns the starting ledger of a key seen for the first time: the
// snapshot's on-hand at its as_of, or the zero state (no count, 0 on hand).
func (d *refData) Initial(k event.Key, threshold int64) *ledger.State {
	_, st := d.initial(k, threshold)
	return st
}

// initial is Initial, with the snapshot's copy of k if it has k (else k):
// a ledger made for k can then share the snapshot's strings rather than
// keep the event's.
func (d *refData) initial(k event.Key, threshold int64) (event.Key, *ledger.State) {
	key, it, ok := d.Stock.lookup(k)
	if !ok {
		return k, &ledger.State{}
	}
	if len(it.State) > 0 {
		var st ledger.State
		if err := st.UnmarshalBinary(it.State); err == nil && st.OnHand == it.OnHand {
			return key, &st
		}
	}
	asOf := it.AsOf
	if asOf == 0 {
		asOf = d.AsOf
	}
	return key, ledger.FromSnapshot(it.OnHand, asOf, threshold)
}

// newReference encodes thresholds, a snapshot (items at asOf, Unix µs) and
// the live threshold changes restored (nil: none) as a reference.
func newReference(th *ledger.Thresholds, asOf int64, items []snapshotItem, live *ledger.Live) reference {
	if th == nil {
		th = ledger.NewThresholds(ledger.DefaultThreshold)
	}
	b := codec.AppendVarint(nil, th.Default)
	rules := th.Rules()
	b = codec.AppendUvarint(b, uint64(len(rules)))
	for _, r := range rules {
		b = codec.AppendString(b, r.SKU)
		b = codec.AppendString(b, r.LocationID)
		b = codec.AppendVarint(b, r.Threshold)
	}
	b = codec.AppendVarint(b, asOf)
	b = codec.AppendUvarint(b, uint64(len(items)))
	for _, it := range items {
		b = codec.AppendString(b, it.SKU)
		b = codec.AppendString(b, it.LocationID)
		b = codec.AppendVarint(b, it.OnHand)
		b = codec.AppendVarint(b, it.AsOf)
		b = codec.AppendBytes(b, it.State)
	}
	b = live.AppendBinary(b)
	sum := sha256.Sum256(b)
	return reference{Digest: string(sum[:]), Raw: b}
}

func encodeReference(r reference) []byte {
	return append([]byte(r.Digest), r.Raw...)
}

func decodeReference(b []byte) (reference, error) {
	if len(b) < sha256.Size {
		return reference{}, wrapCoderErr(codec.ErrCorrupt)
	}
	return reference{Digest: string(b[:sha256.Size]), Raw: b[sha256.Size:]}, nil
}

var refCache struct {
	sync.Mutex
	digest string
	data   *refData
}

// handoffs hold the reference data that ReadReferenceInProcess's job step
// read, for the stock DoFns of the same job in this process, by handoff id
// (registry says why not a side input): the last few, so that a process
// running job after job (tests) does not keep them all.
var handoffs = registry.Table[*handoff]{Keep: 8}

// handoff is the reference data of one job: ready is closed once data or
// err is set.
type handoff struct {
	ready chan struct{}
	data  *refData
	err   error
}

// handoffOf returns the handoff of id, adding it if needed: the reading
// step and the stock DoFns may come to it in either order.
func handoffOf(id string) *handoff {
	return handoffs.LookupOrAdd(id, func() *handoff { return &handoff{ready: make(chan struct{})} })
}

// waitReference waits for the reference data of handoff id.
func waitReference(ctx context.Context, id string) (*refData, error) {
	h := handoffOf(id)
	select {
	case <-h.ready:
		return h.data, h.err
	case <-ctx.Done():
		return nil, fmt.Errorf("stock: waiting for the reference data: %w", ctx.Err())
	}
}

// Data returns the parsed reference data, cached by digest.
func (r reference) Data() (*refData, error) {
	refCache.Lock()
	defer refCache.Unlock()
	if refCache.data != nil && refCache.digest == r.Digest {
		return refCache.data, nil
	}
	d, err := parseReference(r.Raw)
	if err != nil {
		return nil, err
	}
	refCache.digest, refCache.data = r.Digest, d
	return d, nil
}

func parseReference(b []byte) (*refData, error) {
	rd := codec.NewReader(b)
	d := &refData{Thresholds: ledger.NewThresholds(rd.Varint())}
	for n := rd.Uvarint(); n > 0 && rd.Err() == nil; n-- {
		sku, loc := rd.String(), rd.String()
		d.Thresholds.Add(ledger.Rule{SKU: sku, LocationID: loc, Threshold: rd.Varint()})
	}
	d.AsOf = rd.Varint()
	n := rd.Len()
	keys, items := make([]event.Key, 0, n), make([]stockItem, 0, n)
	names := map[string]string{} // interned SKUs and locations
	intern := func(b []byte) string {
		if s, ok := names[string(b)]; ok {
			return s
		}
		s := string(b)
		names[s] = s
		return s
	}
	for ; n > 0 && rd.Err() == nil; n-- {
		k := event.Key{SKU: intern(rd.Bytes()), LocationID: intern(rd.Bytes())}
		it := stockItem{OnHand: rd.Varint(), AsOf: rd.Varint()}
		if st := rd.Bytes(); len(st) > 0 {
			it.State = st
		}
		keys, items = append(keys, k), append(items, it)
	}
	d.Stock = newStockIndex(keys, items)
	d.Live = &ledger.Live{}
	for n := rd.Len(); n > 0 && rd.Err() == nil; n-- {
		c := ledger.ReadChange(rd)
		d.Live.Set(&c, nil)
	}
	if rd.Err() != nil {
		return nil, fmt.Errorf("stock: decode reference: %w", rd.Err())
	}
	return d, nil
}

// ReferenceOptions names the reference data of the stock DoFn.
type ReferenceOptions struct {
	// Thresholds is the thresholds CSV (sku,location_id,threshold) and
	// Snapshot the starting snapshot JSON, local paths or gs:// ("": none).
	Thresholds string
	Snapshot   string
	Default    int64 // threshold of keys no rule names
	// RestoreFrom, a warehouse URI, restores the ledgers of every key the
	// stream stored anything for (see restore); "" starts from the snapshot.
	RestoreFrom string
	// RestoreScope is ScopeFull (the default) or ScopeRecent.
	RestoreScope string
	Horizon      time.Duration
}

// ReadReference is a composite transform that reads the reference data at
// job start and returns a PCollection holding one reference, for use as a
// side input of Apply.
func ReadReference(s beam.Scope, o ReferenceOptions) beam.PCollection {
	s = s.Scope("stock.ReadReference")
	return beam.ParDo(s, &readReferenceFn{Opts: o}, beam.Impulse(s))
}

// ReadReferenceInProcess adds a step that reads the reference data at job
// start and hands it to ApplyInProcess's DoFns in memory, and returns
// the id of that handoff. It is for a runner whose workers run in this
// process (Prism in-process), and spares the stock stage a side input:
//   - Prism gives the SDK no side-input cache tokens, so a side input is
//     read afresh for every bundle, and copied three times per bundle
//     (figures: docs/benchmarks.md#figures-behind-the-code);
//   - Prism schedules a stateful stage with a side input only when its
//     input watermark moves, so the events waited for the slower of the
//     stage's sources.
//
// Upstream reports: docs/beam-notes.md#upstream-issues-ready-to-file, items 3 and 4.
func ReadReferenceInProcess(s beam.Scope, o ReferenceOptions) string {
	s = s.Scope("stock.ReadReference")
	id := registry.NewID("reference-")
	beam.ParDo(s, &readReferenceFn{Opts: o, Handoff: id}, beam.Impulse(s))
	return id
}

type readReferenceFn struct {
	Opts ReferenceOptions
	// Handoff, if set, is where the data goes in this process
	// (ReadReferenceInProcess); nothing is emitted.
	Handoff string
}

func (f *readReferenceFn) ProcessElement(ctx context.Context, _ []byte, emit func(reference)) error {
	if f.Handoff == "" {
		ref, err := loadReference(ctx, f.Opts)
		if err != nil {
			return err
		}
		emit(ref)
		return nil
	}
	h := handoffOf(f.Handoff)
	select {
	case <-h.ready:
		return nil // a retried bundle: the data was handed over already
	default:
	}
	ref, err := loadReference(ctx, f.Opts)
	if err == nil {
		h.data, err = ref.Data()
	}
	h.err = err
	close(h.ready)
	return err
}

// loadReference reads the reference data: thresholds, snapshot and, with
// RestoreFrom, the ledgers restored from the warehouse, which replace the
// snapshot's items of their keys.
func loadReference(ctx context.Context, o ReferenceOptions) (reference, error) {
	ref, err := loadFiles(ctx, o.Thresholds, o.Snapshot, o.Default)
	if err != nil || o.RestoreFrom == "" {
		return ref, err
	}
	data, err := ref.Data()
	if err != nil {
		return reference{}, err
	}
	// Thresholds first: the replay below judges events with them.
	live, err := restoreThresholds(ctx, o.RestoreFrom)
	if err != nil {
		return reference{}, err
	}
	if live.Len() > 0 {
		slog.Info("stream: live threshold changes restored from the warehouse", "warehouse", o.RestoreFrom, "rules", live.Len())
		items := make([]snapshotItem, 0, data.Stock.Len())
		for k, it := range data.Stock.All() {
			items = append(items, it.item(k))
		}
		if data, err = newReference(data.Thresholds, data.AsOf, items, live).Data(); err != nil {
			return reference{}, err
		}
	}
	var restored []snapshotItem
	var st restoreStats
	switch o.RestoreScope {
	case ScopeRecent:
		restored, st, err = restoreRecent(ctx, o.RestoreFrom, data, o.Horizon)
	case ScopeFull, "":
		restored, st, err = restore(ctx, o.RestoreFrom, data, o.Horizon)
	default:
		err = fmt.Errorf("restore: scope %q is neither %s nor %s", o.RestoreScope, ScopeFull, ScopeRecent)
	}
	if err != nil {
		return reference{}, err
	}
	if st.Keys > 0 {
		slog.Info("stream: ledgers restored from the warehouse", "warehouse", o.RestoreFrom, "scope", cmp.Or(o.RestoreScope, ScopeFull),
			"keys", st.Keys, "adjustments", st.Rows, "severities", st.Alerts, "took", st.Took.Round(time.Millisecond))
	}
	items := make([]snapshotItem, 0, data.Stock.Len()+len(restored))
	seen := make(map[event.Key]bool, len(restored))
	for _, it := range restored {
		seen[event.Key{SKU: it.SKU, LocationID: it.LocationID}] = true
		items = append(items, it)
	}
	for k, it := range data.Stock.All() {
		if !seen[k] {
			items = append(items, it.item(k))
		}
	}
	return newReference(data.Thresholds, data.AsOf, items, data.Live), nil
}

func loadFiles(ctx context.Context, thresholdsURI, snapshotURI string, def int64) (reference, error) {
	if def <= 0 {
		def = ledger.DefaultThreshold
	}
	th, err := thresholds.Read(ctx, thresholdsURI, def)
	if err != nil {
		return reference{}, fmt.Errorf("read thresholds: %w", err)
	}
	var asOf int64
	var items []snapshotItem
	if snapshotURI != "" {
		f, err := snapshot.Read(ctx, snapshotURI)
		if err != nil {
			return reference{}, fmt.Errorf("read snapshot: %w", err)
		}
		asOf = f.AsOf.UnixMicro()
		for _, it := range f.Items {
			items = append(items, snapshotItem{SKU: it.SKU, LocationID: it.LocationID, OnHand: it.OnHand,
				AsOf: f.Time(it).UnixMicro(), State: it.State})
		}
	}
	return newReference(th, asOf, items, nil), nil
}
