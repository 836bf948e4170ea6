package transforms

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/inventory-events/inventory/loaders/objects"
)

// readSnapshot reads a starting-stock snapshot: {"as_of": RFC 3339,
// "items": [{"sku", "location_id", "on_hand"}]}.
//
// Stand-in until loaders/snapshot lands; then this becomes snapshot.Read.
func readSnapshot(ctx context.Context, uri string) (int64, []SnapshotItem, error) {
	data, err := objects.ReadFile(ctx, uri)
	if err != nil {
		return 0, nil, err
	}
	var f struct {
		AsOf  time.Time `json:"as_of"`
		Items []struct {
			SKU        string `json:"sku"`
			LocationID string `json:"location_id"`
			OnHand     int64  `json:"on_hand"`
		} `json:"items"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return 0, nil, fmt.Errorf("snapshot %s: %w", uri, err)
	}
	items := make([]SnapshotItem, len(f.Items))
	for i, it := range f.Items {
		items[i] = SnapshotItem{SKU: it.SKU, LocationID: it.LocationID, OnHand: it.OnHand}
	}
	return f.AsOf.UnixMicro(), items, nil
}
