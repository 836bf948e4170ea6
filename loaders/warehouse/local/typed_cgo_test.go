//go:build cgo

package local_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestTypedWriteQueriesLikeReflective writes the same rows of every table
// into two warehouses, with the typed writer and with the reflective one,
// and checks that the warehouse's queries read the same rows back.
func TestTypedWriteQueriesLikeReflective(t *testing.T) {
	ctx := context.Background()
	reflective, typed := t.TempDir(), t.TempDir()
	for _, tb := range warehouse.Tables {
		rows, err := warehouse.AnyRows(tb.Name, sampleRows(t, tb, 500))
		if err != nil {
			t.Fatal(err)
		}
		part := filepath.Join(tb.Name, "dt=2026-03-01")
		if _, err := local.WriteReflective(filepath.Join(reflective, part), rows); err != nil {
			t.Fatal(err)
		}
		if _, err := local.WriteTyped(filepath.Join(typed, part), rows); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range warehouse.Tables {
		sql := "SELECT * FROM " + tb.Name + " ORDER BY ALL"
		want, err := warehouse.QueryRows(ctx, reflective, sql)
		if err != nil {
			t.Fatal(err)
		}
		got, err := warehouse.QueryRows(ctx, typed, sql)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 500 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the typed file reads back %d rows, the reflective one %d, or they differ", tb.Name, len(got), len(want))
		}
	}
}
