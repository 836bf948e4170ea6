package nightly

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
	"github.com/inventory-events/inventory/transforms/summary"
)

// TestThresholdsFromStockLevels: a run given no thresholds file judges each
// key against the threshold the stream last stored for it in stock_levels
// before the end of the day; a key a live change concerns (its own or its
// SKU's) and a key the stream never changed get the default.
func TestThresholdsFromStockLevels(t *testing.T) {
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "warehouse")
	w, err := local.Open(wh)
	if err != nil {
		t.Fatal(err)
	}
	end := clock.Now().UTC().Truncate(24 * time.Hour)
	at := func(h int) time.Time { return end.Add(time.Duration(h) * time.Hour) }
	level := func(sku, loc string, th int64, eventTime, processed time.Time) warehouse.StockLevelRow {
		return warehouse.StockLevelRow{SKU: sku, LocationID: loc, OnHand: 5, PreviousOnHand: 6, EventID: sku + loc + eventTime.String(),
			Reason: "SOLD", EventTime: eventTime, ProcessedAt: processed, Threshold: th}
	}
	levels := []warehouse.StockLevelRow{
		// The latest by processed_at counts, not by event time (a late delta).
		level("SKU-A", "S1", 20, at(-30), at(-29)),
		level("SKU-A", "S1", 30, at(-40), at(-2)),
		level("SKU-A", "S1", 50, at(2), at(3)),   // after the day: not yet
		level("SKU-A", "S2", 0, at(-5), at(-5)),  // 0 is a threshold like any other
		level("SKU-B", "S1", 40, at(-5), at(-5)), // changed live for the key
		level("SKU-C", "S1", 45, at(-5), at(-5)), // changed live for the whole SKU
	}
	if _, err := w.Write(ctx, warehouse.Rows(levels)); err != nil {
		t.Fatal(err)
	}
	changes := map[string][]ledger.Change{
		"SKU-B": {{ID: "c1", SKU: "SKU-B", LocationID: "S1", Threshold: 44, At: at(-3).UnixMicro()}},
		"SKU-C": {{ID: "c2", SKU: "SKU-C", LocationID: ledger.Wildcard, Threshold: 46, At: at(-3).UnixMicro()}},
	}
	th, err := summary.ReadStreamThresholds(ctx, wh, end.UnixMicro(), changes, 10)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[event.Key]int64{
		{SKU: "SKU-A", LocationID: "S1"}: 30,
		{SKU: "SKU-A", LocationID: "S2"}: 0,
		{SKU: "SKU-B", LocationID: "S1"}: 10,
		{SKU: "SKU-C", LocationID: "S1"}: 10,
		{SKU: "SKU-D", LocationID: "S1"}: 10,
	} {
		if got := th.Lookup(k); got != want {
			t.Errorf("%v: threshold %d, want %d", k, got, want)
		}
	}
	// With the changes applied as the report applies them, the keys
	// changed live close at the changed threshold.
	for k, want := range map[event.Key]int64{{SKU: "SKU-B", LocationID: "S1"}: 44, {SKU: "SKU-C", LocationID: "S1"}: 46} {
		if got := summary.LineOf(k, th, changes[k.SKU]).At(end.UnixMicro() - 1); got != want {
			t.Errorf("%v at the end of the day: threshold %d, want %d", k, got, want)
		}
	}
	// No warehouse: the default everywhere.
	if th, err := summary.ReadStreamThresholds(ctx, "", end.UnixMicro(), nil, 12); err != nil || th.Lookup(event.Key{SKU: "SKU-A", LocationID: "S1"}) != 12 {
		t.Errorf("no warehouse: %v, %v", th, err)
	}
}
