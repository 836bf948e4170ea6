package main

import (
	"context"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
)

// TestFakeBigQueryIsAnEmptyWarehouse: the rehearsal's BigQuery answers a
// count as a new warehouse would (0) through the warehouse's own client,
// records the call, and refuses any other query.
func TestFakeBigQueryIsAnEmptyWarehouse(t *testing.T) {
	cl, err := startCloud(t.TempDir(), "deploycheck-dataflow-stream")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.close()
	for _, kv := range cl.env() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "BIGQUERY_EMULATOR_HOST" {
			t.Setenv(k, v)
		}
	}
	ctx := context.Background()
	rows, err := warehouse.QueryRows(ctx, "bq://deploycheck.inventory", "SELECT count(*) AS n FROM daily_summary WHERE report_date = DATE '2026-11-23'")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || warehouse.AsInt(rows[0]["n"]) != 0 {
		t.Fatalf("count: %v, want one row n=0", rows)
	}
	// The nightly preflight's two counts in one query.
	rows, err = warehouse.QueryRows(ctx, "bq://deploycheck.inventory", "SELECT count(*) AS n, COUNT(CASE WHEN event_time >= TIMESTAMP '2026-11-24 00:00:00+00' THEN 1 END) AS day_rows FROM adjustments WHERE event_time < TIMESTAMP '2026-11-25 00:00:00+00'")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || warehouse.AsInt(rows[0]["n"]) != 0 || warehouse.AsInt(rows[0]["day_rows"]) != 0 || len(rows[0]) != 2 {
		t.Fatalf("two counts: %v, want one row n=0 day_rows=0", rows)
	}
	if _, err := warehouse.QueryRows(ctx, "bq://deploycheck.inventory", "SELECT sku FROM adjustments"); err == nil || !strings.Contains(err.Error(), "501") {
		t.Errorf("another query: %v, want 501", err)
	}
	if got := cl.takeBigQuery(); len(got) != 3 || !strings.Contains(got[0], "daily_summary") {
		t.Errorf("recorded %v, want both queries", got)
	}
}

// TestCheckRenames: a mapping must name steps of the running release, lead
// to steps of the new graph, and leave no step of the old graph behind.
func TestCheckRenames(t *testing.T) {
	prev := []string{"A", "A/x.fn", "A/x.other", "B", "B/y.fn", "C"}
	cur := []string{"p.A", "p.A/x.fn", "p.A/z.other", "p.B", "p.B/y.fn", "C"}
	ok := map[string]string{"A": "p.A", "A/x.other": "p.A/z.other", "B": "p.B"}
	if err := checkRenames(prev, cur, ok); err != nil {
		t.Errorf("checkRenames of a whole mapping: %v", err)
	}
	for name, m := range map[string]map[string]string{
		"a step left behind":        {"A": "p.A", "B": "p.B"},
		"an old name of no step":    {"A": "p.A", "A/x.other": "p.A/z.other", "B": "p.B", "D": "p.D"},
		"a new name of no new step": {"A": "p.A", "A/x.other": "p.A/z.other", "B": "p.B", "C": "q.C"},
	} {
		if err := checkRenames(prev, cur, m); err == nil {
			t.Errorf("checkRenames with %s: no error", name)
		}
	}
	if err := checkRenames(cur, cur, nil); err != nil {
		t.Errorf("checkRenames of an unchanged graph without renames: %v", err)
	}
}
