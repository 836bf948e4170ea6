package stock

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func TestMain(m *testing.M) { ptest.Main(m) }

// withoutPrismSplits runs the test's Prism jobs with PrismNoSplitExperiment,
// as the stream job runs (stream.RunPrism), and restores --experiments
// after the test.
func withoutPrismSplits(t testing.TB) {
	old := *jobopts.Experiments
	t.Cleanup(func() { *jobopts.Experiments = old })
	if exps := jobopts.GetExperiments(); !slices.Contains(exps, PrismNoSplitExperiment) {
		*jobopts.Experiments = strings.Join(append(exps, PrismNoSplitExperiment), ",")
	}
}

func init() {
	register.Function2x0(alertString)
	register.Function2x0(levelString)
	register.Function2x0(adjustmentString)
	register.Function2x0(deadString)
	register.Emitter1[string]()
}

func alertString(r warehouse.AlertRow, emit func(string)) {
	emit(fmt.Sprintf("%s@%s %s->%s %d/%d %s", r.SKU, r.LocationID, r.PreviousSeverity, r.Severity, r.OnHand, r.Threshold, r.EventID))
}

func levelString(r warehouse.StockLevelRow, emit func(string)) {
	emit(fmt.Sprintf("%s@%s %d->%d %s %s", r.SKU, r.LocationID, r.PreviousOnHand, r.OnHand, r.Severity, r.EventID))
}

func adjustmentString(r warehouse.AdjustmentRow, emit func(string)) {
	emit(fmt.Sprintf("%s %s", r.EventID, r.Status))
}

func deadString(r warehouse.DeadLetterRow, emit func(string)) {
	emit(fmt.Sprintf("%s %s", r.MessageID, r.Reason))
}

// t0 is the snapshot time of the tests; hours after it are event times.
var t0 = time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Hour).UTC()

func at(h int) int64 { return t0.Add(time.Duration(h) * time.Hour).UnixMicro() }

// adj returns a JSON message of an adjustment at hour h after t0.
func adj(id, sku, loc string, reason event.Reason, qty int64, h int) pubsubio.Message {
	a := event.Adjustment{EventID: id, SKU: sku, LocationID: loc, Reason: reason, Quantity: qty, EventTime: at(h), Source: "test"}
	data, err := event.MarshalJSON(&a)
	if err != nil {
		panic(err)
	}
	return pubsubio.Message{ID: "m-" + id, Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingJSON}}
}

func raw(id, data, encoding string) pubsubio.Message {
	return pubsubio.Message{ID: "m-" + id, Data: []byte(data), Attributes: map[string]string{event.AttrEncoding: encoding}}
}

func binaryMsg(id, sku, loc string, reason event.Reason, qty int64, h int) pubsubio.Message {
	a := event.Adjustment{EventID: id, SKU: sku, LocationID: loc, Reason: reason, Quantity: qty, EventTime: at(h), Source: "test"}
	data, err := event.MarshalBinary(&a)
	if err != nil {
		panic(err)
	}
	return pubsubio.Message{ID: "m-" + id, Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingBinary}}
}

// stockCase is one rule of the contract. Each case uses its own SKUs, so
// all cases run in one pipeline; each case's messages arrive in one batch,
// in the order given.
type stockCase struct {
	name   string
	msgs   []pubsubio.Message
	levels []string // every change of on-hand
	alerts []string
	adjs   []string // statuses
	dead   []string
}

func stockCases() []stockCase {
	const (
		rcv  = event.Received
		sold = event.Sold
		cnt  = event.Counted
	)
	return []stockCase{{
		name: "count arriving before older deltas",
		msgs: []pubsubio.Message{
			adj("c1", "A", "L1", cnt, 50, 10),
			adj("c2", "A", "L1", sold, -5, 5), // before the count: superseded
			adj("c3", "A", "L1", sold, -5, 15),
			adj("c4", "A", "L1", rcv, 7, 10), // at the count's time: included in it
		},
		levels: []string{"A@L1 0->50 OK c1", "A@L1 50->45 OK c3"},
		adjs:   []string{"c1 APPLIED", "c2 SUPERSEDED", "c3 APPLIED", "c4 SUPERSEDED"},
	}, {
		name: "newer count replaces, older count changes nothing",
		msgs: []pubsubio.Message{
			adj("n1", "N", "L1", rcv, 30, 1),
			adj("n2", "N", "L1", cnt, 20, 5),
			adj("n3", "N", "L1", cnt, 99, 3),
			adj("n4", "N", "L1", rcv, 4, 4), // older than the count at 5
			adj("n5", "N", "L1", sold, -1, 6),
		},
		levels: []string{"N@L1 0->30 OK n1", "N@L1 30->20 OK n2", "N@L1 20->19 OK n5"},
		adjs:   []string{"n1 APPLIED", "n2 APPLIED", "n3 SUPERSEDED", "n4 SUPERSEDED", "n5 APPLIED"},
	}, {
		name: "duplicates are counted, never applied again",
		msgs: []pubsubio.Message{
			adj("d1", "D", "L1", rcv, 20, 1),
			adj("d1", "D", "L1", rcv, 20, 1),
			adj("d2", "D", "L1", sold, -15, 2),
			adj("d1", "D", "L1", rcv, 20, 1),
			adj("d2", "D", "L1", sold, -15, 2),
		},
		levels: []string{"D@L1 0->20 OK d1", "D@L1 20->5 LOW d2"},
		alerts: []string{"D@L1 OK->LOW 5/10 d2"},
		adjs:   []string{"d1 APPLIED", "d1 DUPLICATE", "d2 APPLIED", "d1 DUPLICATE", "d2 DUPLICATE"},
	}, {
		name: "threshold lookup: (sku, location), then (sku, *), then default",
		msgs: []pubsubio.Message{
			adj("t1", "T", "L1", rcv, 8, 1),  // rule T,L1 = 5: OK
			adj("t2", "T", "L2", rcv, 8, 1),  // rule T,* = 30: LOW
			adj("t3", "U", "L1", rcv, 8, 1),  // default 10: LOW
			adj("t4", "U", "L2", rcv, 12, 1), // default 10: OK
		},
		levels: []string{"T@L1 0->8 OK t1", "T@L2 0->8 LOW t2", "U@L1 0->8 LOW t3", "U@L2 0->12 OK t4"},
		alerts: []string{"T@L2 ->LOW 8/30 t2", "U@L1 ->LOW 8/10 t3"},
		adjs:   []string{"t1 APPLIED", "t2 APPLIED", "t3 APPLIED", "t4 APPLIED"},
	}, {
		name: "alert sequence OK->LOW->OUT->LOW->OK from a snapshot",
		msgs: []pubsubio.Message{
			adj("s1", "S", "L1", sold, -12, 1),
			adj("s2", "S", "L1", sold, -3, 2), // stays LOW: no alert
			adj("s3", "S", "L1", sold, -5, 3),
			adj("s4", "S", "L1", sold, -1, 4), // stays OUT
			adj("s5", "S", "L1", rcv, 6, 5),
			adj("s6", "S", "L1", rcv, 10, 6),
			adj("s7", "S", "L1", rcv, 1, 7), // stays OK
		},
		levels: []string{"S@L1 20->8 LOW s1", "S@L1 8->5 LOW s2", "S@L1 5->0 OUT s3", "S@L1 0->-1 OUT s4",
			"S@L1 -1->5 LOW s5", "S@L1 5->15 OK s6", "S@L1 15->16 OK s7"},
		alerts: []string{"S@L1 OK->LOW 8/10 s1", "S@L1 LOW->OUT 0/10 s3", "S@L1 OUT->LOW 5/10 s5", "S@L1 LOW->RECOVERED 15/10 s6"},
		adjs:   []string{"s1 APPLIED", "s2 APPLIED", "s3 APPLIED", "s4 APPLIED", "s5 APPLIED", "s6 APPLIED", "s7 APPLIED"},
	}, {
		name: "snapshot: older deltas are superseded, a LOW start emits nothing",
		msgs: []pubsubio.Message{
			adj("p1", "P", "L1", sold, -1, -2), // before the snapshot
			adj("p2", "P", "L1", sold, -1, 1),  // LOW -> LOW
		},
		levels: []string{"P@L1 4->3 LOW p2"},
		adjs:   []string{"p1 SUPERSEDED", "p2 APPLIED"},
	}, {
		name: "no snapshot: first event alerts only if LOW or OUT",
		msgs: []pubsubio.Message{
			adj("f1", "F", "L1", event.Adjusted, -2, 1),
			adj("f2", "F", "L2", cnt, 0, 1),
			adj("f3", "F", "L3", rcv, 100, 1),
		},
		levels: []string{"F@L1 0->-2 OUT f1", "F@L3 0->100 OK f3"},
		alerts: []string{"F@L1 ->OUT -2/10 f1", "F@L2 ->OUT 0/10 f2"},
		adjs:   []string{"f1 APPLIED", "f2 APPLIED", "f3 APPLIED"},
	}, {
		name: "invalid events are dead-lettered with their reason",
		msgs: []pubsubio.Message{
			raw("x1", "{not json", event.EncodingJSON),
			raw("x2", `{"foo": 1, "bar": [true]}`, event.EncodingJSON),
			raw("x3", `{"event_id":"x3","sku":"X","location_id":"L1","reason":"STOLEN","quantity":-1,"event_time":"2026-01-01T00:00:00Z"}`, event.EncodingJSON),
			raw("x4", `{"event_id":"x4","sku":"","location_id":"L1","reason":"SOLD","quantity":-1,"event_time":"2026-01-01T00:00:00Z"}`, event.EncodingJSON),
			raw("x5", `{"event_id":"x5","sku":"X","location_id":"","reason":"SOLD","quantity":-1,"event_time":"2026-01-01T00:00:00Z"}`, event.EncodingJSON),
			raw("x6", `{"event_id":"x6","sku":"X","location_id":"L1","reason":"COUNTED","quantity":-3,"event_time":"2026-01-01T00:00:00Z"}`, event.EncodingJSON),
			raw("x7", `{"event_id":"x7","sku":"X","location_id":"L1","reason":"SOLD","quantity":-1}`, event.EncodingJSON),
			raw("x8", "\xff\xff\xff", event.EncodingBinary),
			raw("x9", `{}`, "AVRO"),
			binaryMsg("x10", "X", "L9", rcv, 42, 1), // valid, BINARY
		},
		dead: []string{"m-x1 undecodable", "m-x2 schema_mismatch", "m-x3 unknown_reason", "m-x4 missing_sku",
			"m-x5 missing_location_id", "m-x6 negative_count", "m-x7 missing_event_time", "m-x8 undecodable",
			"m-x9 unknown_encoding"},
		levels: []string{"X@L9 0->42 OK x10"},
		adjs:   []string{"x10 APPLIED"},
	}, {
		name: "older than the dedup horizon and after the count: too_late",
		msgs: []pubsubio.Message{
			adj("h1", "H", "L1", rcv, 50, 20*24),
			adj("h2", "H", "L1", rcv, 5, 24), // 19 days older than the newest event
		},
		levels: []string{"H@L1 0->50 OK h1"},
		adjs:   []string{"h1 APPLIED"},
		dead:   []string{"m-h2 too_late"},
	}}
}

func testReference() reference {
	th := ledger.NewThresholds(10)
	th.Add(ledger.Rule{SKU: "T", LocationID: "L1", Threshold: 5})
	th.Add(ledger.Rule{SKU: "T", LocationID: "*", Threshold: 30})
	return newReference(th, t0.UnixMicro(), []snapshotItem{
		{SKU: "S", LocationID: "L1", OnHand: 20},
		{SKU: "P", LocationID: "L1", OnHand: 4},
	}, nil)
}

// TestStockRules runs every rule of the contract as a case through
// DecodeEvents and Apply on the test runner (Prism), in both state
// layouts: by shard (Prism's) and per key (Dataflow's).
func TestStockRules(t *testing.T) {
	slowtest.Skip(t, "Prism jobs")
	for _, perKey := range []bool{false, true} {
		name := "shards"
		if perKey {
			name = "per-key"
		}
		t.Run(name, func(t *testing.T) { testStockRules(t, perKey) })
	}
	// The shard layout again, reading its state (base and deltas) for
	// every element instead of trusting the DoFn's cache, with a new base
	// whenever the deltas outgrow the old one.
	t.Run("shards-read-state", func(t *testing.T) {
		trustCache, deltaFloor = false, 0
		defer func() { trustCache, deltaFloor = true, 64<<10 }()
		testStockRules(t, false)
	})
	// The per-key layout the same way: its base and change records read
	// for every element, a new base on every write.
	t.Run("per-key-read-state", func(t *testing.T) {
		trustCache, keyChangesFloor = false, 0
		defer func() { trustCache, keyChangesFloor = true, 4<<10 }()
		testStockRules(t, true)
	})
}

func testStockRules(t *testing.T, perKey bool) {
	withoutPrismSplits(t)
	cases := stockCases()
	p, s := beam.NewPipelineWithRoot()
	var batches []pubsubio.Batch
	var levels, alerts, adjs, dead []string
	received := 0
	for _, c := range cases {
		batches = append(batches, pubsubio.Batch{Messages: c.msgs})
		received += len(c.msgs)
		levels = append(levels, c.levels...)
		alerts = append(alerts, c.alerts...)
		adjs = append(adjs, c.adjs...)
		dead = append(dead, c.dead...)
	}
	out := stockPipeline(s, beam.CreateList(s, batches), perKey)
	passert.Equals(s, beam.ParDo(s, levelString, out.Levels), toAny(levels)...)
	passert.Equals(s, beam.ParDo(s, alertString, out.Alerts), toAny(alerts)...)
	passert.Equals(s, beam.ParDo(s, adjustmentString, out.Adjustments), toAny(adjs)...)
	passert.Equals(s, beam.ParDo(s, deadString, out.DeadLetters), toAny(dead)...)

	pr := ptest.RunAndValidate(t, p)
	got := commit.CountsOf(pr)
	dups, superseded := 3, 0
	for _, a := range adjs {
		if strings.HasSuffix(a, " SUPERSEDED") {
			superseded++
		}
	}
	want := commit.Counts{Received: int64(received), Applied: int64(len(adjs) - dups), Duplicates: int64(dups), DeadLettered: int64(len(dead)),
		Superseded: int64(superseded)}
	if got != want {
		t.Errorf("counters = %+v, want %+v", got, want)
	}
	if !got.Balanced() {
		t.Errorf("counters %+v do not reconcile", got)
	}
}

// stockPipeline is DecodeEvents + Apply (or KeyEvents +
// ApplyPerKey), unpacked into rows with the dead letters of both.
func stockPipeline(s beam.Scope, batches beam.PCollection, perKey bool) commit.Rows {
	dec := DecodeEvents(s, batches, 4, OriginPubSub)
	ref := beam.Create(s, testReference())
	var commits beam.PCollection
	if perKey {
		commits = ApplyPerKey(s, KeyEvents(s, dec.Events), ref, 0)
	} else {
		commits = Apply(s, dec.Events, ref, 0)
	}
	return commit.Unpack(s, beam.Flatten(s, dec.Rejected, commits))
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func TestAttributesJSON(t *testing.T) {
	for _, attrs := range []map[string]string{
		nil,
		{"googclient_schemaencoding": "JSON"},
		{"b": "2", "a": "1", "event_id": "evt-1"},
		{"q": `say "hi" <b> & \ é`, "k": "\x01"},
	} {
		want := "{}"
		if len(attrs) > 0 {
			b, _ := json.Marshal(attrs)
			want = string(b)
		}
		if got := attributesJSON(attrs); got != want {
			t.Errorf("attributesJSON(%v) = %s, want %s", attrs, got, want)
		}
	}
}

func init() {
	register.Function2x0(soldEvents)
	register.Function2x0(slowLevels)
	register.Emitter2[int, shardBatch]()
	register.Emitter1[int64]()
}

// soldEvents makes event i a sale of one unit of S@L1, alone in a shardBatch
// element of shard 0.
func soldEvents(i int, emit func(int, shardBatch)) {
	emit(0, shardBatch{Records: []eventRecord{{MessageID: fmt.Sprint("m", i),
		Adj: event.Adjustment{EventID: fmt.Sprint("e", i), SKU: "S", LocationID: "L1", Reason: event.Sold,
			Quantity: -1, EventTime: at(1 + i), Source: "test"}}}})
}

// slowLevels is a sink that takes longer than Prism's progress tick per
// element, as a warehouse write on a busy machine does, and passes on each
// new on-hand.
func slowLevels(c commit.Commit, emit func(int64)) {
	time.Sleep(150 * time.Millisecond)
	for _, l := range c.Levels {
		emit(l.OnHand)
	}
}

// TestStockSurvivesSlowBundles sends 20 sales of one key, as 20 elements of
// one shard, through Apply into a slow sink on Prism: each sale must be
// applied to the stock the previous one left, so the on-hands seen are
// 19, 18, ... 0 once each. Without PrismNoSplitExperiment, Prism splits the slow
// bundle, runs the rest of the shard in a second bundle from the state the
// first one started from, and on-hands repeat.
func TestStockSurvivesSlowBundles(t *testing.T) {
	slowtest.Skip(t, "a Prism job with a slow sink")
	withoutPrismSplits(t)
	p, s := beam.NewPipelineWithRoot()
	const n = 20
	ids := make([]int, n)
	var want []any
	for i := range n {
		ids[i] = i
		want = append(want, int64(20-1-i)) // S@L1 starts at 20
	}
	events := beam.ParDo(s, soldEvents, beam.CreateList(s, ids))
	commits := Apply(s, events, beam.Create(s, testReference()), 0)
	passert.Equals(s, beam.ParDo(s, slowLevels, commits), want...)
	ptest.RunAndValidate(t, p)
}

// TestLedgersDeltas checks that a base with deltas laid over it in order
// reads back as the ledgers that wrote them.
func TestLedgersDeltas(t *testing.T) {
	l := newLedgers()
	keys := []event.Key{{SKU: "A", LocationID: "1"}, {SKU: "B", LocationID: "1"}, {SKU: "C", LocationID: "2"}}
	for i, k := range keys {
		st, err := l.Get(k, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		st.OnHand = int64(i + 1)
	}
	base, err := l.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, n := l.AppendChanged(nil); n != 0 {
		t.Fatalf("AppendChanged right after AppendBinary: %d keys (%d bytes), want none", n, len(d))
	}
	var deltas [][]byte
	for round, k := range []event.Key{keys[1], keys[1], keys[2]} {
		st, err := l.Get(k, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		st.OnHand = int64(100 + round)
		d, n := l.AppendChanged(nil)
		if n != 1 {
			t.Fatalf("round %d: AppendChanged wrote %d keys, want 1", round, n)
		}
		deltas = append(deltas, d)
	}
	got, err := parseLedgers(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deltas {
		if err := got.ApplyDelta(d); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[event.Key]int64{keys[0]: 1, keys[1]: 101, keys[2]: 102} {
		st, err := got.Peek(k)
		if err != nil || st == nil || st.OnHand != want {
			t.Errorf("%v: %+v, %v; want on hand %d", k, st, err, want)
		}
	}
	if err := got.ApplyDelta(deltas[0][:len(deltas[0])-1]); err == nil {
		t.Error("a truncated delta was accepted")
	}
}
