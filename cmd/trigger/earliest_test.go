package main

import (
	"context"
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestEarliestFromTheTemplatesWarehouse: in production the backfill's
// first-day check reads the warehouse the nightly template is given.
func TestEarliestFromTheTemplatesWarehouse(t *testing.T) {
	if earliest("", time.UTC) != nil {
		t.Error("a launch without a warehouse parameter must not check")
	}
	dir := t.TempDir()
	w, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC)
	if _, err := w.Write(context.Background(), warehouse.Rows([]warehouse.AdjustmentRow{{EventID: "e1", SKU: "S", LocationID: "L",
		Reason: "SOLD", Quantity: -1, EventTime: at, Status: warehouse.StatusApplied, IngestTime: at}})); err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	d, ok, err := earliest(dir, berlin)(context.Background())
	if err != nil || !ok || d != "2026-11-21" {
		t.Errorf("earliest = %q %v %v, want 2026-11-21 (23:30 UTC is the next day in Berlin)", d, ok, err)
	}
}
