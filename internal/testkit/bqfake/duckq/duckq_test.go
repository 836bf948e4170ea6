package duckq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/civil"

	"github.com/inventory-events/inventory/internal/testkit/bqfake"
	"github.com/inventory-events/inventory/internal/testkit/bqfake/duckq"
	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery"
)

const uri = "bq://duckq.inventory"

// TestJobsQueries runs the jobs' kinds of queries through the BigQuery
// backend (its client, over REST) against the fake answered by DuckDB.
func TestJobsQueries(t *testing.T) {
	ctx := context.Background()
	fake := bqfake.Start(t)
	fake.SetEnv(t)
	e, err := duckq.New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fake.SetQueryEngine(e)
	if _, err := warehouse.Setup(ctx, uri, "EU", false); err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	var adj []warehouse.AdjustmentRow
	for i := range 40 {
		tm := day.Add(time.Duration(i) * time.Hour)
		adj = append(adj, warehouse.AdjustmentRow{EventID: fmt.Sprintf("e%02d", i), SKU: fmt.Sprintf("S%d", i%4), LocationID: "L",
			Reason: "SOLD", Quantity: -1, EventTime: tm, Source: "t", Status: warehouse.StatusApplied, IngestTime: tm})
	}
	if _, err := w.Write(ctx, warehouse.Rows(adj)); err != nil {
		t.Fatal(err)
	}
	end := day.Add(24 * time.Hour).UnixMicro()
	rows, err := warehouse.QueryRows(ctx, uri, fmt.Sprintf(
		"SELECT count(*) AS n, COUNT(CASE WHEN event_time >= %s THEN 1 END) AS day_rows FROM adjustments WHERE event_time < %s",
		warehouse.TimestampSQL(uri, day.UnixMicro()), warehouse.TimestampSQL(uri, end)))
	if err != nil || len(rows) != 1 || rows[0]["n"] != int64(24) || rows[0]["day_rows"] != int64(24) {
		t.Fatalf("counts: %v %v, want 24 and 24", rows, err)
	}
	total := 0
	for slice := range 3 {
		rows, err := warehouse.QueryRows(ctx, uri, fmt.Sprintf(`SELECT event_id, event_time FROM adjustments
WHERE event_time < %s AND MOD(ABS(FARM_FINGERPRINT(CONCAT(sku, '|', location_id))), 3) = %d`, warehouse.TimestampSQL(uri, end), slice))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if tm, ok := r["event_time"].(time.Time); !ok || tm.Before(day) {
				t.Errorf("event_time %v", r["event_time"])
			}
		}
		total += len(rows)
	}
	if total != 24 {
		t.Errorf("the three slices hold %d rows, want 24", total)
	}
	first, ok, err := warehouse.FirstDataDate(ctx, uri, "UTC")
	if err != nil || !ok || first != civil.DateOf(day) {
		t.Errorf("first data date %v %v %v, want %s", first, ok, err, civil.DateOf(day))
	}
	rows, err = warehouse.QueryRows(ctx, uri, "SELECT `sku`, SUM(quantity) AS q FROM adjustments GROUP BY sku ORDER BY sku")
	if err != nil || len(rows) != 4 || rows[0]["q"] != int64(-10) {
		t.Errorf("sum: %v %v, want 4 rows, S0 -10", rows, err)
	}
}
