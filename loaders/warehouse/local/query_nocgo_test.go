//go:build !cgo

package local_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestQueryNeedsCgo checks what a build without cgo can do with a local
// warehouse: write, and get a clear error from a query.
func TestQueryNeedsCgo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := warehouse.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, warehouse.Rows([]warehouse.AdjustmentRow{adjustment("e1", -1, "2026-03-01T09:00:00Z")})); err != nil {
		t.Fatalf("Write without cgo: %v", err)
	}
	_, err = warehouse.QueryRows(ctx, dir, "SELECT count(*) FROM adjustments")
	if !errors.Is(err, local.ErrNoSQL) || !strings.Contains(err.Error(), "needs a cgo build") || !strings.Contains(err.Error(), dir) {
		t.Errorf("query without cgo: %v, want ErrNoSQL naming %s", err, dir)
	}
}
