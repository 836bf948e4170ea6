// Package thresholds reads the reorder thresholds file (sku,location_id,threshold;
// "*" for every location) from a local path or gs://.
package thresholds

import (
	"context"
	"fmt"

	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/objects"
)

// Read returns the rules of the file at uri with default def for keys no
// rule names. An empty uri gives no rules, only the default.
func Read(ctx context.Context, uri string, def int64) (*ledger.Thresholds, error) {
	if uri == "" {
		return ledger.NewThresholds(def), nil
	}
	r, err := objects.Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("thresholds: %w", err)
	}
	defer r.Close()
	th, err := ledger.ParseThresholds(r, uri, def)
	if err != nil {
		return nil, fmt.Errorf("thresholds: %w", err)
	}
	return th, nil
}
