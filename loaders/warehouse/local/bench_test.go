package local_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// BenchmarkLocalWrite writes batches of 1,000 adjustment rows (one file per
// batch); it reports rows/s.
func BenchmarkLocalWrite(b *testing.B) {
	ctx := context.Background()
	w, err := warehouse.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]warehouse.AdjustmentRow, 1000)
	for i := range rows {
		rows[i] = adjustment(fmt.Sprintf("b%06d", i), -1, "2026-03-01T09:00:00Z")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkLocalWriteDailySummary writes one report date of 30,000
// daily_summary rows as one file, as the nightly job does; it reports rows/s.
func BenchmarkLocalWriteDailySummary(b *testing.B) {
	ctx := context.Background()
	w, err := warehouse.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	rows := dailySummaries(30000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}

// dailySummaries returns n daily_summary rows of one report date, one per
// (sku, location_id), a third of them with NULL days_of_cover and
// streaming_on_hand.
func dailySummaries(n int) []warehouse.DailySummaryRow {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]warehouse.DailySummaryRow, n)
	for i := range rows {
		closing := int64(i % 97)
		r := warehouse.DailySummaryRow{
			ReportDate: day, SKU: fmt.Sprintf("SKU-%05d", i/10), LocationID: fmt.Sprintf("L%d", i%10),
			OpeningOnHand: closing + 3, ClosingOnHand: closing, Received: int64(i % 5), Sold: -int64(i % 7),
			Returned: int64(i % 2), NetChange: -3, MinOnHand: closing - 1, Events: int64(i % 13),
			AlertsRaised: int64(i % 3), MinutesOutOfStock: float64(i%60) / 4, Threshold: 10,
			Reconciled: i%3 != 0, RunID: "run-2026-03-01", Sold7d: int64(i % 41), Sold28d: int64(i % 101),
		}
		if i%3 != 0 {
			cover, streaming := float64(closing)/1.5, closing
			r.DaysOfCover, r.StreamingOnHand = &cover, &streaming
		}
		rows[i] = r
	}
	return rows
}

// BenchmarkLocalQuery runs the current-stock style query over 200 files of
// 500 rows (what a stream leaves behind in small bundles).
func BenchmarkLocalQuery(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	w, err := warehouse.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	for f := 0; f < 200; f++ {
		rows := make([]warehouse.AdjustmentRow, 500)
		for i := range rows {
			rows[i] = adjustment(fmt.Sprintf("q%03d-%03d", f, i), -1, "2026-03-01T09:00:00Z")
			rows[i].SKU = fmt.Sprintf("SKU-%d", i%50)
		}
		if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows, err := warehouse.QueryRows(ctx, dir, "SELECT sku, SUM(quantity) AS q FROM adjustments GROUP BY sku")
		if err != nil || len(rows) != 50 {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
	}
}
