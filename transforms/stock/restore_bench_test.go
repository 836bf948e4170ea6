package stock

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// BenchmarkRestore measures the restore at start over a local warehouse of
// 100,000 stored adjustments on 3,000 keys, reported as rows/s. One file per
// 2,000 rows: the stream's sink writes a file per transaction, of up to
// commit.DefaultBatchRows rows under a backlog and fewer when the job is
// idle, and many small files are the harder case for the restore.
func BenchmarkRestore(b *testing.B) {
	const rows, keys, perFile = 100_000, 3000, 2000
	ctx := context.Background()
	dir := b.TempDir()
	l, err := local.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-48 * time.Hour).UTC()
	ingest := time.Now().UTC()
	batch := make([]warehouse.AdjustmentRow, 0, perFile)
	for i := range rows {
		k := i % keys
		reason, qty := event.Sold, int64(-1)
		if i%3 == 0 {
			reason, qty = event.Received, 2
		}
		batch = append(batch, warehouse.AdjustmentRow{EventID: fmt.Sprintf("e%07d", i), SKU: fmt.Sprintf("SKU-%05d", k/10),
			LocationID: fmt.Sprintf("L%d", k%10), Reason: reason.String(), Quantity: qty, EventTime: t0.Add(time.Duration(i) * time.Second),
			Status: warehouse.StatusApplied, MessageID: fmt.Sprint(i), Attributes: "{}", IngestTime: ingest.Add(time.Duration(i) * time.Microsecond)})
		if len(batch) == perFile {
			if err := l.WriteAll(ctx, warehouse.Rows(batch)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	ref, err := newReference(ledger.NewThresholds(10), t0.UnixMicro(), nil, nil).Data()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		items, st, err := restore(ctx, dir, ref, 0)
		if err != nil {
			b.Fatal(err)
		}
		if st.Rows != rows || len(items) != keys {
			b.Fatalf("restored %d rows, %d keys", st.Rows, len(items))
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
