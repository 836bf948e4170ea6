package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestCompact: `inventory compact` merges a partition's small files and
// keeps every row; a BigQuery warehouse is refused.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	if _, _, err := runCLI(t, ctx, "compact", "--warehouse", "bq://p.d"); err == nil || !strings.Contains(err.Error(), "only a local") {
		t.Fatalf("bq warehouse: %v", err)
	}
	wh := filepath.Join(t.TempDir(), "wh")
	if _, err := warehouse.Setup(ctx, wh, "", false); err != nil {
		t.Fatal(err)
	}
	l, err := local.Open(wh)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 10 {
		row := warehouse.AdjustmentRow{EventID: fmt.Sprint("e", i), SKU: "S", LocationID: "L", Reason: "SOLD",
			Quantity: -1, EventTime: at, Status: warehouse.StatusApplied, IngestTime: at}
		if _, err := l.Write(ctx, warehouse.Rows([]warehouse.AdjustmentRow{row})); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := runCLI(t, ctx, "compact", "--warehouse", wh, "--fanout", "4")
	if err != nil || !strings.Contains(out, "10 files merged into 1") {
		t.Fatalf("compact: %q %v", out, err)
	}
	files, _ := filepath.Glob(filepath.Join(wh, "adjustments", "dt=2026-03-01", "*.parquet"))
	if len(files) != 1 {
		t.Errorf("%d files after compact, want 1", len(files))
	}
	rows, err := warehouse.QueryRows(ctx, wh, "SELECT count(DISTINCT event_id) AS n, count(*) AS m FROM adjustments")
	if err != nil || rows[0]["n"] != int64(10) || rows[0]["m"] != int64(10) {
		t.Fatalf("rows after compact: %v %v", rows, err)
	}
}
