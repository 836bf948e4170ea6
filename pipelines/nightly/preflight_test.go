package nightly

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
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

// TestPreflightFirstNight: the first night as deployed (no --snapshot, no
// earlier daily_summary) and a day without adjustments are normal days:
// Preflight passes them and says where the opening stock comes from.
func TestPreflightFirstNight(t *testing.T) {
	ctx := context.Background()
	wh := preflightWarehouse(t)
	for _, c := range []struct {
		date civil.Date
		rows int64
	}{{day, 2}, {day.AddDays(1), 0}} {
		plan, err := Preflight(ctx, Config{Date: c.date, Warehouse: wh})
		if err != nil || plan.DayRows != c.rows || plan.Rows != 2 || !strings.Contains(plan.Opening, "the stream's starting stock") {
			t.Errorf("Preflight %s = %+v, %v; want %d rows, opening from the stream's starting stock", c.date, plan, err, c.rows)
		}
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
	if err != nil || plan.Rows != 2 || !strings.HasPrefix(plan.Opening, "the snapshot") {
		t.Fatalf("a good day: %+v %v", plan, err)
	}
	if DefaultOutput != "./reports-out" {
		t.Fatalf("DefaultOutput %q: ./reports is the renderers' Go package", DefaultOutput)
	}
}
