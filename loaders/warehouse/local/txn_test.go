package local_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

func alertRow(id string) warehouse.AlertRow {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return warehouse.AlertRow{AlertID: id, SKU: "SKU-1", LocationID: "WH-1", Severity: "LOW", OnHand: 3, Threshold: 5,
		EventID: "e-" + id, EventTime: at, AlertTime: at}
}

func count(t *testing.T, dir, sql string) int64 {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), dir, sql)
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]["n"].(int64)
}

// checkStored checks that adjustments and low_stock_alerts hold n rows each
// and that no transaction is left in the journal.
func checkStored(t *testing.T, dir string, n int64, when string) {
	t.Helper()
	for _, table := range []string{"adjustments", "low_stock_alerts"} {
		if got := count(t, dir, "SELECT count(*) AS n FROM "+table); got != n {
			t.Fatalf("%s %s has %d rows, want %d", when, table, got, n)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "_txn")); len(ents) != 0 {
		t.Fatalf("%s %d transactions left in the journal, want 0", when, len(ents))
	}
}

// TestLocalWriteAll writes two tables as one transaction, then leaves a
// committed and an uncommitted transaction behind as a crashed writer would,
// and checks that opening the warehouse finishes the first and drops the
// second.
func TestLocalWriteAll(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := warehouse.Setup(ctx, dir, "", false); err != nil {
		t.Fatal(err)
	}
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = l.WriteAll(ctx,
		warehouse.Rows([]warehouse.AlertRow{alertRow("a1"), alertRow("a2")}),
		warehouse.Rows([]warehouse.AdjustmentRow{adjustment("e1", -1, "2026-03-01T09:00:00Z"), adjustment("e2", -1, "2026-03-02T09:00:00Z")}),
	)
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, dir, 2, "after the write")

	// A crash after COMMIT, with one of two files already renamed, and a
	// crash before COMMIT: journals built from files written by a second
	// warehouse.
	other := t.TempDir()
	lo, err := local.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := lo.WriteAll(ctx,
		warehouse.Rows([]warehouse.AdjustmentRow{adjustment("e3", -1, "2026-03-01T09:00:00Z")}),
		warehouse.Rows([]warehouse.AlertRow{alertRow("a3")}),
	); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join(dir, "_txn", "1-committed")
	uncommitted := filepath.Join(dir, "_txn", "2-uncommitted")
	for _, d := range []string{committed, uncommitted} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var manifest []string
	files, _ := filepath.Glob(filepath.Join(other, "*", "dt=*", "*.parquet"))
	if len(files) != 2 {
		t.Fatalf("%d files written, want 2", len(files))
	}
	for i, f := range files {
		rel, _ := filepath.Rel(other, f)
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(uncommitted, name), data, 0o644)
		if i == 0 {
			// One file already renamed into place before the crash.
			os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
			os.WriteFile(filepath.Join(dir, rel), data, 0o644)
		} else {
			os.WriteFile(filepath.Join(committed, name), data, 0o644)
		}
		manifest = append(manifest, `{"file":"`+name+`","into":"`+rel+`"}`)
	}
	os.WriteFile(filepath.Join(committed, "COMMIT"), []byte("["+manifest[0]+","+manifest[1]+"]"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(uncommitted, old, old)

	if _, err := local.Open(dir); err != nil {
		t.Fatal(err)
	}
	checkStored(t, dir, 3, "after recovery")
}
