package stock

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestRestore stores what a stream would have stored for two keys and
// checks that restore rebuilds their ledgers: on-hand, the ids already seen
// (a redelivery is a duplicate), the count that supersedes older deltas, and
// the severity consumers were last told.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	ingest := t0.Add(48 * time.Hour)
	row := func(id, sku string, reason event.Reason, qty int64, at time.Duration, status string) warehouse.AdjustmentRow {
		ingest = ingest.Add(time.Millisecond)
		return warehouse.AdjustmentRow{EventID: id, SKU: sku, LocationID: "L1", Reason: reason.String(), Quantity: qty,
			EventTime: t0.Add(at), Status: status, MessageID: "m-" + id, Attributes: "{}", IngestTime: ingest}
	}
	adjs := []warehouse.AdjustmentRow{
		row("k1", "K", event.Counted, 30, time.Hour, warehouse.StatusApplied),
		row("k2", "K", event.Sold, -5, 2*time.Hour, warehouse.StatusApplied),
		row("k2", "K", event.Sold, -5, 2*time.Hour, warehouse.StatusDuplicate),
		row("k3", "K", event.Sold, -18, 3*time.Hour, warehouse.StatusApplied), // 7: LOW
		row("k0", "K", event.Received, 4, 30*time.Minute, warehouse.StatusSuperseded),
		row("j1", "J", event.Received, 3, time.Hour, warehouse.StatusApplied),
	}
	alerts := []warehouse.AlertRow{{AlertID: "a1", SKU: "K", LocationID: "L1", Severity: "LOW", PreviousSeverity: "OK",
		OnHand: 7, Threshold: 10, EventID: "k3", EventTime: t0.Add(3 * time.Hour), AlertTime: ingest}}
	if err := l.WriteAll(ctx, warehouse.Rows(alerts), warehouse.Rows(adjs)); err != nil {
		t.Fatal(err)
	}
	th := ledger.NewThresholds(10)
	base := newReference(th, t0.UnixMicro(), []snapshotItem{{SKU: "K", LocationID: "L1", OnHand: 20}, {SKU: "S", LocationID: "L1", OnHand: 50}}, nil)
	data, err := base.Data()
	if err != nil {
		t.Fatal(err)
	}
	items, st, err := restore(ctx, dir, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 5 || st.Keys != 2 || st.Alerts != 1 || st.Mismatches != 0 {
		t.Fatalf("stats %+v, want 5 rows, 2 keys, 1 alert, 0 mismatches", st)
	}
	got := map[string]*ledger.State{}
	for _, it := range items {
		var s ledger.State
		if err := s.UnmarshalBinary(it.State); err != nil {
			t.Fatal(err)
		}
		got[it.SKU] = &s
	}
	k, j := got["K"], got["J"]
	if k == nil || k.OnHand != 7 || k.Severity != ledger.Low {
		t.Fatalf("K restored as %+v, want on_hand 7 LOW", k)
	}
	if j == nil || j.OnHand != 3 {
		t.Fatalf("J restored as %+v, want on_hand 3", j)
	}
	again := event.Adjustment{EventID: "k2", SKU: "K", LocationID: "L1", Reason: event.Sold, Quantity: -5, EventTime: t0.Add(2 * time.Hour).UnixMicro()}
	if r := k.Apply(&again, 10, 0); r.Outcome != ledger.Duplicate {
		t.Errorf("k2 delivered again: %v, want DUPLICATE", r.Outcome)
	}
	late := event.Adjustment{EventID: "k4", SKU: "K", LocationID: "L1", Reason: event.Received, Quantity: 9, EventTime: t0.Add(50 * time.Minute).UnixMicro()}
	if r := k.Apply(&late, 10, 0); r.Outcome != ledger.Superseded {
		t.Errorf("a delta older than the restored count: %v, want SUPERSEDED", r.Outcome)
	}
	more := event.Adjustment{EventID: "k5", SKU: "K", LocationID: "L1", Reason: event.Received, Quantity: 10, EventTime: t0.Add(4 * time.Hour).UnixMicro()}
	if r := k.Apply(&more, 10, 0); r.OnHand != 17 || !r.Alert || r.From != ledger.Low || r.To != ledger.OK {
		t.Errorf("k5: %+v, want 17 and LOW -> OK", r)
	}

	// Through loadReference: restored keys replace the snapshot's, the
	// others stay.
	snap := filepath.Join(t.TempDir(), "state.json")
	if err := snapshot.Write(ctx, snap, &snapshot.File{AsOf: t0, Items: []snapshot.Item{
		{SKU: "K", LocationID: "L1", OnHand: 20}, {SKU: "S", LocationID: "L1", OnHand: 50}}}); err != nil {
		t.Fatal(err)
	}
	merged, err := loadReference(ctx, ReferenceOptions{Snapshot: snap, Default: 10, RestoreFrom: dir})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := merged.Data()
	if err != nil {
		t.Fatal(err)
	}
	if s := rd.Initial(event.Key{SKU: "K", LocationID: "L1"}, 10); s.OnHand != 7 {
		t.Errorf("K starts at %d, want the restored 7", s.OnHand)
	}
	if s := rd.Initial(event.Key{SKU: "S", LocationID: "L1"}, 10); s.OnHand != 50 {
		t.Errorf("S starts at %d, want the snapshot's 50", s.OnHand)
	}
}
