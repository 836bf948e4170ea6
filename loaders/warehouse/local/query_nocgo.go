//go:build !cgo

package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// ErrNoSQL is the error of a query in a build without cgo: DuckDB is a C++
// library. Writing needs no cgo.
var ErrNoSQL = errors.New("the local warehouse's SQL engine (DuckDB) needs a cgo build; " +
	"build with CGO_ENABLED=1 and a C compiler, or use a bq://PROJECT.DATASET warehouse")

func query(_ context.Context, dir, _ string) (*warehouse.Result, error) {
	return nil, fmt.Errorf("warehouse: query %s: %w", dir, ErrNoSQL)
}
