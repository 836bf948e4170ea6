package local_test

import (
	"context"
	"fmt"
	"testing"

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
