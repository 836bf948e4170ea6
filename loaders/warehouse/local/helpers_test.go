package local_test

import (
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// openTemp opens a local warehouse in a new temporary directory.
func openTemp(t *testing.T) (*local.Warehouse, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func adjustment(id string, qty int64, at string) warehouse.AdjustmentRow {
	pt := ts(at).Add(time.Second)
	return warehouse.AdjustmentRow{
		EventID: id, SKU: "SKU-1", LocationID: "L1", Reason: "SOLD", Quantity: qty,
		EventTime: ts(at), Source: "pos", Status: warehouse.StatusApplied,
		MessageID: "m-" + id, PublishTime: &pt, Attributes: `{"origin":"test"}`,
		IngestTime: ts(at).Add(2 * time.Second),
	}
}
