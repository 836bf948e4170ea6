package nightly

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// preflightWarehouse is a local warehouse holding two adjustments on day.
func preflightWarehouse(t *testing.T) string {
	t.Helper()
	wh := filepath.Join(t.TempDir(), "wh")
	w, err := local.Open(wh)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(day.Year, day.Month, day.Day, 12, 0, 0, 0, time.UTC)
	rows := []warehouse.AdjustmentRow{
		{EventID: "e1", SKU: "SKU-A", LocationID: "S1", Reason: "RECEIVED", Quantity: 5, EventTime: at, Status: warehouse.StatusApplied, IngestTime: at},
		{EventID: "e2", SKU: "SKU-A", LocationID: "S1", Reason: "SOLD", Quantity: -2, EventTime: at.Add(time.Hour), Status: warehouse.StatusApplied, IngestTime: at},
	}
	if _, err := w.Write(context.Background(), warehouse.Rows(rows)); err != nil {
		t.Fatal(err)
	}
	return wh
}

// TestPreflightOpeningStock: without --snapshot and without the previous
// day's daily_summary, the run is refused rather than reporting every key
// as a mismatch, and the refusal is recorded as FAILED while the day's
// existing daily_summary is left alone.
func TestPreflightOpeningStock(t *testing.T) {
	ctx := context.Background()
	wh := preflightWarehouse(t)
	cfg := Config{Date: day, Warehouse: wh, Output: t.TempDir(), RunID: "refused"}
	_, err := Preflight(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "no opening stock for 2026-03-10") || !strings.Contains(err.Error(), "2026-03-09") {
		t.Fatalf("Preflight = %v, want no opening stock", err)
	}
	// A daily_summary of the day itself, from an earlier good run, survives.
	keep := []warehouse.DailySummaryRow{{ReportDate: day.In(time.UTC), SKU: "SKU-A", LocationID: "S1", ClosingOnHand: 3, RunID: "good"}}
	if err := warehouse.ReplaceDate(ctx, wh, day, keep); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "no opening stock") {
		t.Fatalf("Run = %v, want no opening stock", err)
	}
	if got := dailySummary(t, wh, day); len(got) != 1 || got["SKU-A@S1"]["run_id"] != "good" {
		t.Fatalf("daily_summary after a refused run: %v", got)
	}
	runs := reportRuns(t, wh)
	if len(runs) != 1 || runs[0]["status"] != warehouse.RunFailed || !strings.Contains(runs[0]["error"].(string), "no opening stock") {
		t.Fatalf("report_runs = %v, want the refusal recorded", runs)
	}

	// The previous day's daily_summary is an opening stock.
	prev := []warehouse.DailySummaryRow{{ReportDate: day.AddDays(-1).In(time.UTC), SKU: "SKU-A", LocationID: "S1", ClosingOnHand: 7, RunID: "p"}}
	if err := warehouse.ReplaceDate(ctx, wh, day.AddDays(-1), prev); err != nil {
		t.Fatal(err)
	}
	plan, err := Preflight(ctx, cfg)
	if err != nil || plan.Rows != 2 || !strings.Contains(plan.Opening, "daily_summary of 2026-03-09 (1 keys)") {
		t.Fatalf("Preflight = %+v, %v", plan, err)
	}
}

// TestPreflightRefuses: every refusal names the value at fault.
func TestPreflightRefuses(t *testing.T) {
	ctx := context.Background()
	wh := preflightWarehouse(t)
	snap := fixtures + "inventory_state.json"
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"empty day":          {Config{Date: day.AddDays(1), Warehouse: wh, Snapshot: snap}, "has no adjustments on 2026-03-11"},
		"missing snapshot":   {Config{Date: day, Warehouse: wh, Snapshot: "/no/such/state.json"}, `--snapshot "/no/such/state.json"`},
		"missing input":      {Config{Date: day, Warehouse: wh, Snapshot: snap, Input: "/no/such/*.csv"}, `--input "/no/such/*.csv": no such file`},
		"missing thresholds": {Config{Date: day, Warehouse: wh, Snapshot: snap, Thresholds: "/no/th.csv"}, `--thresholds "/no/th.csv"`},
		"missing warehouse":  {Config{Date: day, Warehouse: "/no/such/wh", Snapshot: snap}, `warehouse "/no/such/wh"`},
		"bad time zone":      {Config{Date: day, Warehouse: wh, Snapshot: snap, TimeZone: "Mars/Base"}, "Mars/Base"},
	} {
		if _, err := Preflight(ctx, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s", name, err, c.want)
		}
	}
	plan, err := Preflight(ctx, Config{Date: day, Warehouse: wh, Snapshot: snap})
	if err != nil || plan.Rows != 2 || plan.Opening != "the snapshot" {
		t.Fatalf("a good day: %+v %v", plan, err)
	}
	if DefaultOutput != "./reports-out" {
		t.Fatalf("DefaultOutput %q: ./reports is the renderers' Go package", DefaultOutput)
	}
}
