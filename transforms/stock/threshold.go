package stock

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// Live reorder thresholds. `inventory thresholds set` publishes a
// ThresholdUpdate to the threshold-updates topic; the job reads it as a
// second unbounded input and hands it to the stock stage, which keeps the
// live rules next to the ledgers (ledger.Live), judges later events against
// them and re-evaluates the severity of the keys the change concerns at
// once. The pipelines/stream README explains the design; this file has
// its parts.

func init() {
	register.DoFn4x1[context.Context, pubsubio.Batch, func(int, shardBatch), func(commit.Commit), error](&shardUpdatesFn{})
	register.DoFn4x1[context.Context, pubsubio.Batch, func(string, route), func(warehouse.DeadLetterRow), error](&keyUpdatesFn{})
	register.Emitter2[int, shardBatch]()
	register.Emitter2[string, route]()
	register.Emitter1[warehouse.ThresholdChangeRow]()
	register.DoFn3x0[int, shardBatch, func(string, route)](&locationsFn{})
	register.DoFn7x1[context.Context, state.Provider, string, route, reference, func(string, shardBatch), func(warehouse.ThresholdChangeRow), error](&routeFn{})
	beam.RegisterType(reflect.TypeOf(route{}))
	beam.RegisterCoder(reflect.TypeOf(route{}), encodeRoute, decodeRoute)
}

// originThresholds names the threshold-updates input in dead letters.
const originThresholds = "threshold-updates"

// codeBadThreshold is the dead-letter reason of a threshold change whose
// threshold is out of range or that has no id or time.
const codeBadThreshold = "bad_threshold"

// reasonThresholdChange is the reason of the stock_levels row of a key whose
// severity a threshold change moved (on-hand unchanged).
const reasonThresholdChange = "THRESHOLD_CHANGE"

// thresholdUpdate is one threshold change on its way to the stock stage.
type thresholdUpdate struct {
	Change    ledger.Change
	MessageID string
	// Record marks the one element of a change that stores its
	// threshold_changes row and acks its message (a (sku, *) change goes
	// to several).
	Record bool
	AckID  string
	// Shards is the shard count of Apply, so that a shard takes only
	// its own keys of a (sku, *) change (0 on Dataflow).
	Shards int
}

// decodeThresholdUpdate decodes and validates a threshold-updates message
// by its googclient_schemaencoding attribute (JSON, the default, or BINARY).
func decodeThresholdUpdate(m *pubsubio.Message) (ledger.Change, error) {
	var u inventoryv1.ThresholdUpdate
	var err error
	switch enc := m.Attributes[event.AttrEncoding]; enc {
	case event.EncodingBinary:
		err = proto.Unmarshal(m.Data, &u)
	case event.EncodingJSON, "":
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(m.Data, &u)
	default:
		return ledger.Change{}, &event.Invalid{Code: event.CodeBadEncoding, Detail: fmt.Sprintf("encoding %q is neither JSON nor BINARY", enc)}
	}
	if err != nil {
		return ledger.Change{}, &event.Invalid{Code: event.CodeSchemaMismatch, Detail: "not a ThresholdUpdate: " + err.Error()}
	}
	at, err := time.Parse(time.RFC3339Nano, u.GetChangedAt())
	if err != nil {
		return ledger.Change{}, &event.Invalid{Code: event.CodeBadTime, Detail: fmt.Sprintf("changed_at %q is not RFC 3339", u.GetChangedAt())}
	}
	c := ledger.Change{ID: u.GetChangeId(), SKU: u.GetSku(), LocationID: u.GetLocationId(), Threshold: u.GetThreshold(),
		At: at.UnixMicro(), By: u.GetChangedBy()}
	if err := c.Validate(); err != nil {
		var inv *event.Invalid
		if errors.As(err, &inv) {
			return c, &event.Invalid{Code: inv.Code, Detail: err.Error()}
		}
		return c, &event.Invalid{Code: codeBadThreshold, Detail: err.Error()}
	}
	return c, nil
}

// ThresholdUpdateProto is the wire message of a change.
func ThresholdUpdateProto(c *ledger.Change) *inventoryv1.ThresholdUpdate {
	return &inventoryv1.ThresholdUpdate{ChangeId: c.ID, Sku: c.SKU, LocationId: c.LocationID, Threshold: c.Threshold,
		ChangedBy: c.By, ChangedAt: time.UnixMicro(c.At).UTC().Format(time.RFC3339Nano)}
}

// ShardThresholdUpdates is a composite transform that routes threshold
// updates to the shards of Apply (Prism). It expects a PCollection of
// Batch (from pubsubio.Read of the threshold-updates subscription) and
// returns a PCollection of KV<int, shardBatch> holding Updates only: a
// (sku, location) change goes to its key's shard, a (sku, *) change to
// every shard (the one of key (sku, *) records it and carries its ack),
// and a PCollection of Commit with the dead letters of invalid messages.
func ShardThresholdUpdates(s beam.Scope, batches beam.PCollection, shards int) (beam.PCollection, beam.PCollection) {
	s = s.Scope("stock.ShardThresholdUpdates")
	if shards <= 0 {
		shards = DefaultShards
	}
	return beam.ParDo2(s, &shardUpdatesFn{Shards: shards}, batches)
}

type shardUpdatesFn struct {
	Shards int
}

func (f *shardUpdatesFn) ProcessElement(_ context.Context, b pubsubio.Batch, emit func(int, shardBatch), reject func(commit.Commit)) error {
	now := time.Now()
	var rejected commit.Commit
	for i := range b.Messages {
		m := &b.Messages[i]
		c, err := decodeThresholdUpdate(m)
		if err != nil {
			rejected.DeadLetters = append(rejected.DeadLetters, deadLetter(m, err, originThresholds, now))
			if m.AckID != "" {
				rejected.ThresholdAcks = append(rejected.ThresholdAcks, m.AckID)
			}
			continue
		}
		u := thresholdUpdate{Change: c, MessageID: m.ID, Record: true, AckID: m.AckID, Shards: f.Shards}
		home := c.Key().Shard(f.Shards)
		emit(home, shardBatch{Updates: []thresholdUpdate{u}})
		if c.Wild() {
			for sh := range f.Shards {
				if sh != home {
					emit(sh, shardBatch{Updates: []thresholdUpdate{{Change: c, MessageID: m.ID, Shards: f.Shards}}})
				}
			}
		}
	}
	if len(rejected.DeadLetters) > 0 {
		reject(rejected)
	}
	return nil
}

// route is what the threshold router (RouteThresholdUpdates) receives per
// SKU: locations the stream saw for it, and changes of its rules.
type route struct {
	Locations []string
	Updates   []thresholdUpdate
}

// RegisterLocations is a composite transform that tells the threshold
// router which locations each SKU has stock at. It expects the
// KV<int, shardBatch> of DecodeEvents and returns a PCollection of
// KV<string, route> keyed by SKU. Each worker sends a (sku, location) once
// per locationsTTL, so that the router sees few elements; a location seen
// again later is sent again, which covers a registration lost with a failed
// bundle.
func RegisterLocations(s beam.Scope, events beam.PCollection) beam.PCollection {
	s = s.Scope("stock.RegisterLocations")
	return beam.ParDo(s, &locationsFn{}, events)
}

const locationsTTL = 10 * time.Minute

type locationsFn struct {
	seen  map[event.Key]bool
	since time.Time
}

func (f *locationsFn) ProcessElement(_ int, sh shardBatch, emit func(string, route)) {
	if f.seen == nil || time.Since(f.since) > locationsTTL {
		f.seen, f.since = map[event.Key]bool{}, time.Now()
	}
	for i := range sh.Records {
		k := sh.Records[i].Adj.Key()
		if f.seen[k] {
			continue
		}
		f.seen[k] = true
		emit(k.SKU, route{Locations: []string{k.LocationID}})
	}
}

// KeyThresholdUpdates is a composite transform that keys threshold updates
// by SKU for the router (Dataflow). It expects a PCollection of Batch (the
// native read of the threshold-updates subscription) and returns a
// PCollection of KV<string, route> and one of the dead-letter rows of
// invalid messages.
func KeyThresholdUpdates(s beam.Scope, batches beam.PCollection) (beam.PCollection, beam.PCollection) {
	s = s.Scope("stock.KeyThresholdUpdates")
	return beam.ParDo2(s, &keyUpdatesFn{}, batches)
}

type keyUpdatesFn struct{}

func (f *keyUpdatesFn) ProcessElement(_ context.Context, b pubsubio.Batch, emit func(string, route), reject func(warehouse.DeadLetterRow)) error {
	now := time.Now()
	for i := range b.Messages {
		m := &b.Messages[i]
		c, err := decodeThresholdUpdate(m)
		if err != nil {
			reject(deadLetter(m, err, originThresholds, now))
			continue
		}
		emit(c.SKU, route{Updates: []thresholdUpdate{{Change: c, MessageID: m.ID, Record: true, AckID: m.AckID}}})
	}
	return nil
}

// RouteThresholdUpdates is a composite transform that fans threshold
// changes out to the per-key stock stage (ApplyPerKey). It expects a
// PCollection of KV<string, route> keyed by SKU (RegisterLocations and
// KeyThresholdUpdates, flattened) and the reference side input, and keeps
// per SKU in state the locations seen and the SKU's live rules. A
// (sku, location) change goes to that key; a (sku, *) change to every
// location of the SKU: those registered, and those of the snapshot or
// restored at start; a location registered after a (sku, *) change is sent
// that change. It returns a PCollection of KV<string, shardBatch> keyed by
// stockKey, holding Updates, and a PCollection of
// warehouse.ThresholdChangeRow, one per change received.
func RouteThresholdUpdates(s beam.Scope, routes, ref beam.PCollection) (beam.PCollection, beam.PCollection) {
	s = s.Scope("stock.RouteThresholdUpdates")
	return beam.ParDo2(s, &routeFn{}, routes, beam.SideInput{Input: ref})
}

type routeFn struct {
	Locations state.Value[[]byte]
	Live      state.Value[[]byte]
}

func (f *routeFn) ProcessElement(_ context.Context, sp state.Provider, sku string, r route, refIn reference,
	emit func(string, shardBatch), record func(warehouse.ThresholdChangeRow)) error {
	ref, err := refIn.Data()
	if err != nil {
		return err
	}
	raw, ok, err := f.Locations.Read(sp)
	if err != nil {
		return fmt.Errorf("threshold router: read locations of %q: %w", sku, err)
	}
	var locs []string
	if ok {
		rd := codec.NewReader(raw)
		for n := rd.Len(); n > 0 && rd.Err() == nil; n-- {
			locs = append(locs, rd.String())
		}
		if err := rd.Done(); err != nil {
			return fmt.Errorf("threshold router: decode locations of %q: %w", sku, err)
		}
	}
	var live ledger.Live
	if raw, ok, err := f.Live.Read(sp); err != nil {
		return fmt.Errorf("threshold router: read rules of %q: %w", sku, err)
	} else if ok {
		if err := live.UnmarshalBinary(raw); err != nil {
			return err
		}
	}
	wild, haveWild := live.BySKU[sku]
	added := false
	for _, loc := range r.Locations {
		if slices.Contains(locs, loc) {
			continue
		}
		locs, added = append(locs, loc), true
		if haveWild {
			c := ledger.Change{ID: wild.ID, SKU: sku, LocationID: ledger.Wildcard, Threshold: wild.Threshold, At: wild.At}
			emit(stockKey(event.Key{SKU: sku, LocationID: loc}), shardBatch{Updates: []thresholdUpdate{{Change: c}}})
		}
	}
	liveChanged := false
	now := time.Now().UTC()
	for _, u := range r.Updates {
		c := u.Change
		applied, prev, had := live.Set(&c, ref.Thresholds, ref.Live)
		liveChanged = liveChanged || applied
		record(changeRow(&u, applied, prev, had, now))
		if !applied {
			continue
		}
		if !c.Wild() {
			emit(stockKey(c.Key()), shardBatch{Updates: []thresholdUpdate{{Change: c, MessageID: u.MessageID}}})
			continue
		}
		targets := slices.Clone(locs)
		for k := range ref.Stock.OfSKU(sku) {
			if !slices.Contains(targets, k.LocationID) {
				targets = append(targets, k.LocationID)
			}
		}
		for _, loc := range targets {
			emit(stockKey(event.Key{SKU: sku, LocationID: loc}), shardBatch{Updates: []thresholdUpdate{{Change: c, MessageID: u.MessageID}}})
		}
	}
	if added {
		b := codec.AppendUvarint(nil, uint64(len(locs)))
		for _, l := range locs {
			b = codec.AppendString(b, l)
		}
		if err := f.Locations.Write(sp, b); err != nil {
			return fmt.Errorf("threshold router: write locations of %q: %w", sku, err)
		}
	}
	if liveChanged {
		if err := f.Live.Write(sp, live.AppendBinary(nil)); err != nil {
			return fmt.Errorf("threshold router: write rules of %q: %w", sku, err)
		}
	}
	return nil
}

// changeRow is the threshold_changes row of a change received: applied or
// not (a later change of its rule came first), and the rule's previous
// value (had false: none).
func changeRow(u *thresholdUpdate, applied bool, prev int64, had bool, now time.Time) warehouse.ThresholdChangeRow {
	c := &u.Change
	row := warehouse.ThresholdChangeRow{ChangeID: c.ID, SKU: c.SKU, LocationID: c.LocationID, Threshold: c.Threshold,
		ChangedBy: c.By, ChangedAt: time.UnixMicro(c.At).UTC(), Applied: applied, MessageID: u.MessageID, RecordedAt: now}
	if had {
		row.PreviousThreshold = &prev
	}
	return row
}

// applyUpdates applies threshold changes to live (the rules of a shard or a
// key) and re-evaluates the keys each concerns (keysOf), which get returns
// the ledgers of (nil: a key with no stock yet, left alone). It returns
// the rows they caused: stock_levels and alerts of the keys whose severity
// changed, the threshold_changes rows and acks of the updates marked
// Record.
func (c *stockCore) applyUpdates(updates []thresholdUpdate, ref *refData, live *ledger.Live,
	keysOf func(u *thresholdUpdate) []event.Key, get func(k event.Key, threshold int64) (*ledger.State, error)) (commit.Commit, bool, error) {
	var out commit.Commit
	changed := false
	for i := range updates {
		u := &updates[i]
		ch := &u.Change
		// The ledgers first, with the thresholds before the change: a key
		// met for the first time starts from the snapshot classified so.
		keys := keysOf(u)
		states := make([]*ledger.State, len(keys))
		for i, k := range keys {
			st, err := get(k, ledger.Effective(k, ref.Thresholds, ref.Live, live))
			if err != nil {
				return commit.Commit{}, false, err
			}
			states[i] = st
		}
		applied, prev, had := live.Set(ch, ref.Thresholds, ref.Live)
		changed = changed || applied
		now := c.now()
		if u.Record {
			out.ThresholdChanges = append(out.ThresholdChanges, changeRow(u, applied, prev, had, now))
			if u.AckID != "" {
				out.ThresholdAcks = append(out.ThresholdAcks, u.AckID)
			}
		}
		if !applied {
			continue
		}
		for i, k := range keys {
			th := ledger.Effective(k, ref.Thresholds, ref.Live, live)
			st := states[i]
			if st == nil {
				continue
			}
			res := st.Reevaluate(th)
			if !res.Alert {
				continue
			}
			eid := ledger.ChangeEventID(ch.ID)
			at := time.UnixMicro(ch.At).UTC()
			out.Levels = append(out.Levels, warehouse.StockLevelRow{SKU: k.SKU, LocationID: k.LocationID, OnHand: st.OnHand,
				PreviousOnHand: st.OnHand, EventID: eid, Reason: reasonThresholdChange, EventTime: at, ProcessedAt: now,
				Threshold: th, Severity: st.Severity.String()})
			prevSev := ""
			if res.From != ledger.Unknown {
				prevSev = res.From.String()
			}
			out.Alerts = append(out.Alerts, warehouse.AlertRow{AlertID: ledger.AlertID(k, eid, res.To), SKU: k.SKU,
				LocationID: k.LocationID, Severity: res.To.AlertName(), PreviousSeverity: prevSev, OnHand: st.OnHand,
				Threshold: th, EventID: eid, EventTime: at, AlertTime: now})
		}
	}
	return out, changed, nil
}

func appendUpdates(b []byte, us []thresholdUpdate) []byte {
	b = codec.AppendUvarint(b, uint64(len(us)))
	for i := range us {
		u := &us[i]
		b = ledger.AppendChange(b, &u.Change)
		b = codec.AppendString(b, u.MessageID)
		var rec uint64
		if u.Record {
			rec = 1
		}
		b = codec.AppendUvarint(b, rec)
		b = codec.AppendString(b, u.AckID)
		b = codec.AppendUvarint(b, uint64(u.Shards))
	}
	return b
}

func readUpdates(r *codec.Reader) []thresholdUpdate {
	n := r.Len()
	if n == 0 {
		return nil
	}
	us := make([]thresholdUpdate, n)
	for i := range us {
		us[i] = thresholdUpdate{Change: ledger.ReadChange(r), MessageID: r.String(), Record: r.Uvarint() == 1, AckID: r.String(), Shards: int(r.Uvarint())}
	}
	return us
}

func encodeRoute(v route) []byte {
	b := codec.AppendUvarint(nil, uint64(len(v.Locations)))
	for _, l := range v.Locations {
		b = codec.AppendString(b, l)
	}
	return appendUpdates(b, v.Updates)
}

func decodeRoute(b []byte) (route, error) {
	r := codec.NewReader(b)
	var v route
	for n := r.Len(); n > 0 && r.Err() == nil; n-- {
		v.Locations = append(v.Locations, r.String())
	}
	v.Updates = readUpdates(r)
	return v, wrapCoderErr(r.Done())
}

// restoreThresholdsSQL reads every threshold change the stream recorded.
const restoreThresholdsSQL = `SELECT change_id, sku, location_id, threshold, changed_at FROM threshold_changes`

// restoreThresholds reads the live threshold changes recorded in the
// warehouse at uri (threshold_changes), the latest per rule.
func restoreThresholds(ctx context.Context, uri string) (*ledger.Live, error) {
	cols, rows, err := warehouse.QueryTable(ctx, uri, restoreThresholdsSQL)
	if err != nil {
		return nil, fmt.Errorf("restore: read threshold_changes: %w", err)
	}
	if err := wantColumns(cols, "change_id", "sku", "location_id", "threshold", "changed_at"); err != nil {
		return nil, fmt.Errorf("restore: read threshold_changes: %w", err)
	}
	live := &ledger.Live{}
	for _, r := range rows {
		id, _ := r[0].(string)
		sku, _ := r[1].(string)
		loc, _ := r[2].(string)
		th, _ := r[3].(int64)
		at, _ := r[4].(time.Time)
		live.Set(&ledger.Change{ID: id, SKU: sku, LocationID: loc, Threshold: th, At: at.UnixMicro()}, nil)
	}
	return live, nil
}
