package stock

import (
	"fmt"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	register.Function2x0(changeString)
	register.Function2x0(commitChanges)
	register.Function2x0(noEvents)
}

func changeString(r warehouse.ThresholdChangeRow, emit func(string)) {
	prev := "none"
	if r.PreviousThreshold != nil {
		prev = fmt.Sprint(*r.PreviousThreshold)
	}
	emit(fmt.Sprintf("%s %s@%s %s->%d applied=%v", r.ChangeID, r.SKU, r.LocationID, prev, r.Threshold, r.Applied))
}

func commitChanges(c commit.Commit, emit func(warehouse.ThresholdChangeRow)) {
	for _, r := range c.ThresholdChanges {
		emit(r)
	}
}

// thresholdMsg is a threshold-updates message (JSON) of a change made at
// hour h after t0.
func thresholdMsg(id, sku, loc string, th int64, h int) pubsubio.Message {
	c := ledger.Change{ID: id, SKU: sku, LocationID: loc, Threshold: th, At: at(h), By: "test"}
	data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ThresholdUpdateProto(&c))
	if err != nil {
		panic(err)
	}
	return pubsubio.Message{ID: "m-" + id, Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingJSON}}
}

// noEvents emits no events.
func noEvents(pubsubio.Batch, func(int, shardBatch)) {}

func thresholdReference() reference {
	th := ledger.NewThresholds(10)
	th.Add(ledger.Rule{SKU: "W", LocationID: "L2", Threshold: 5})
	return newReference(th, t0.UnixMicro(), []snapshotItem{
		{SKU: "W", LocationID: "L1", OnHand: 20},
		{SKU: "W", LocationID: "L2", OnHand: 8},
		{SKU: "W", LocationID: "L3", OnHand: 50},
		{SKU: "V", LocationID: "L1", OnHand: 15},
		{SKU: "U", LocationID: "L1", OnHand: 3},
	}, nil)
}

// TestThresholdUpdates sends threshold changes, valid and not, into the
// stock stage in both layouts (shards with ShardThresholdUpdates; per key
// through RouteThresholdUpdates) with no events: raising a threshold above
// a snapshot key's stock raises LOW at once, lowering it below raises
// RECOVERED, a (sku, *) change reaches every location of the SKU but not
// one with its own rule in the file, and bad changes are dead letters.
func TestThresholdUpdates(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		name := "shards"
		if perKey {
			name = "per-key"
		}
		t.Run(name, func(t *testing.T) { testThresholdUpdates(t, perKey) })
	}
}

func testThresholdUpdates(t *testing.T, perKey bool) {
	withoutPrismSplits(t)
	p, s := beam.NewPipelineWithRoot()
	bad := thresholdMsg("bad-sku", "W X", "L1", 5, 1)
	batches := beam.Create(s, pubsubio.Batch{Messages: []pubsubio.Message{
		thresholdMsg("u1", "W", "*", 25, 1),  // W@L1 20 < 25: LOW; L2 keeps its rule 5; L3 50 OK
		thresholdMsg("u2", "V", "L1", 20, 1), // 15 < 20: LOW
		thresholdMsg("u3", "U", "L1", 2, 1),  // U@L1 was LOW (3 < 10): 3 >= 2 RECOVERED
		bad,
		raw("neg", `{"change_id":"neg","sku":"W","location_id":"L1","threshold":"-4","changed_at":"2026-01-01T00:00:00Z"}`, "JSON"),
		raw("nan", `{"change_id":"nan","sku":"W","location_id":"L1","threshold":"ten","changed_at":"2026-01-01T00:00:00Z"}`, "JSON"),
	}})
	ref := beam.Create(s, thresholdReference())
	events := beam.ParDo(s, noEvents, batches)
	var alerts, changes, dead beam.PCollection
	if perKey {
		updates, rejected := KeyThresholdUpdates(s, batches)
		routed, ch := RouteThresholdUpdates(s, beam.Flatten(s, RegisterLocations(s, events), updates), ref)
		commits := ApplyPerKey(s, routed, ref, 0)
		rows := commit.Unpack(s, commits)
		alerts, changes, dead = rows.Alerts, ch, rejected
	} else {
		updates, rejected := ShardThresholdUpdates(s, batches, 4)
		commits := Apply(s, beam.Flatten(s, events, updates), ref, 0)
		rows := commit.Unpack(s, beam.Flatten(s, commits, rejected))
		alerts, changes, dead = rows.Alerts, beam.ParDo(s, commitChanges, commits), rows.DeadLetters
	}
	passert.Equals(s, beam.ParDo(s, alertString, alerts),
		"W@L1 OK->LOW 20/25 threshold:u1", "V@L1 OK->LOW 15/20 threshold:u2", "U@L1 LOW->RECOVERED 3/2 threshold:u3")
	passert.Equals(s, beam.ParDo(s, changeString, changes),
		"u1 W@* none->25 applied=true", "u2 V@L1 none->20 applied=true", "u3 U@L1 none->2 applied=true")
	passert.Equals(s, beam.ParDo(s, deadString, dead),
		"m-bad-sku bad_sku", "m-neg bad_threshold", "m-nan schema_mismatch")
	ptest.RunAndValidate(t, p)
}

func TestLiveThresholdOrder(t *testing.T) {
	base := ledger.NewThresholds(10)
	base.Add(ledger.Rule{SKU: "A", LocationID: "L1", Threshold: 4})
	late := ledger.Change{ID: "b", SKU: "A", LocationID: "*", Threshold: 30, At: at(2)}
	early := ledger.Change{ID: "a", SKU: "A", LocationID: "*", Threshold: 20, At: at(1)}
	var l ledger.Live
	if ok, _, had := l.Set(&late, base); !ok || had {
		t.Fatalf("first change: applied %v, had %v", ok, had)
	}
	if ok, prev, had := l.Set(&early, base); ok || !had || prev != 30 {
		t.Errorf("earlier change after a later one: applied %v, prev %d %v; want not applied, prev 30", ok, prev, had)
	}
	k1, k2 := event.Key{SKU: "A", LocationID: "L1"}, event.Key{SKU: "A", LocationID: "L2"}
	if got := ledger.Effective(k1, base, &l); got != 4 {
		t.Errorf("A@L1 = %d, want its file rule 4", got)
	}
	if got := ledger.Effective(k2, base, &l); got != 30 {
		t.Errorf("A@L2 = %d, want the live (A, *) 30", got)
	}
	restored := &ledger.Live{}
	restored.Set(&ledger.Change{ID: "c", SKU: "A", LocationID: "L2", Threshold: 7, At: at(3)}, nil)
	if got := ledger.Effective(k2, base, &l, restored); got != 7 {
		t.Errorf("A@L2 = %d, want the restored (A, L2) 7", got)
	}
	var enc ledger.Live
	if err := enc.UnmarshalBinary(l.AppendBinary(nil)); err != nil || ledger.Effective(k2, base, &enc) != 30 {
		t.Errorf("round trip: %v, %d", err, ledger.Effective(k2, base, &enc))
	}
}
