// Package snapshot reads and writes inventory_state.json: the stock of every
// (sku, location) as counted at a moment. The streaming job and the
// consumer start from one; the consumer writes one as it goes.
//
//	{"as_of": "2026-11-24T00:00:00Z",
//	 "items": [{"sku": "SKU-001", "location_id": "STORE-1", "on_hand": 40}]}
//
// An item may carry its own "as_of", which then overrides the file's.
package snapshot

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/objects"
)

// File is the content of a snapshot.
type File struct {
	AsOf  time.Time `json:"as_of"`
	Items []Item    `json:"items"`
}

// Item is the stock of one key.
type Item struct {
	SKU        string     `json:"sku"`
	LocationID string     `json:"location_id"`
	OnHand     int64      `json:"on_hand"`
	AsOf       *time.Time `json:"as_of,omitempty"`
	// State, when present, is the key's whole ledger (ids seen, deltas since
	// the count), so that a consumer restarted from the file recognises
	// redeliveries and late deltas exactly. Written by the consumer.
	State []byte `json:"state,omitempty"`
}

// Key returns the stock key of it.
func (it Item) Key() event.Key { return event.Key{SKU: it.SKU, LocationID: it.LocationID} }

// Time returns the moment the item was counted.
func (f *File) Time(it Item) time.Time {
	if it.AsOf != nil {
		return *it.AsOf
	}
	return f.AsOf
}

// Read reads and checks the snapshot at uri (a path or gs://).
func Read(ctx context.Context, uri string) (*File, error) {
	b, err := objects.ReadFile(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return parse(b, uri)
}

// parse decodes and checks a snapshot; name is for messages.
func parse(b []byte, name string) (*File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	if f.AsOf.IsZero() {
		return nil, fmt.Errorf("snapshot %s: as_of is missing", name)
	}
	seen := make(map[event.Key]bool, len(f.Items))
	for i, it := range f.Items {
		if it.SKU == "" || it.LocationID == "" {
			return nil, fmt.Errorf("snapshot %s: item %d: sku and location_id are required", name, i)
		}
		if it.OnHand < -event.MaxQuantity || it.OnHand > event.MaxQuantity {
			return nil, fmt.Errorf("snapshot %s: item %d: on_hand %d out of range", name, i, it.OnHand)
		}
		if seen[it.Key()] {
			return nil, fmt.Errorf("snapshot %s: item %d: %s appears twice", name, i, it.Key())
		}
		seen[it.Key()] = true
	}
	return &f, nil
}

// Marshal renders f with items sorted by sku and location, one per line.
func Marshal(f *File) []byte {
	items := slices.Clone(f.Items)
	slices.SortFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.LocationID, b.LocationID))
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\n  \"as_of\": %q,\n  \"items\": [", f.AsOf.UTC().Format(time.RFC3339Nano))
	for i, it := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		line, _ := json.Marshal(it)
		buf.WriteString("\n    ")
		buf.Write(line)
	}
	if len(items) > 0 {
		buf.WriteString("\n  ")
	}
	buf.WriteString("]\n}\n")
	return buf.Bytes()
}

// Write writes f to uri atomically.
func Write(ctx context.Context, uri string, f *File) error {
	if err := objects.WriteFile(ctx, uri, "application/json", Marshal(f)); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// States returns a ledger state per item, seeded as a count at the item's
// time, with severities from th.
func (f *File) States(th *ledger.Thresholds) map[event.Key]*ledger.State {
	out := make(map[event.Key]*ledger.State, len(f.Items))
	for _, it := range f.Items {
		if len(it.State) > 0 {
			var s ledger.State
			if err := s.UnmarshalBinary(it.State); err == nil && s.OnHand == it.OnHand {
				out[it.Key()] = &s
				continue
			}
		}
		out[it.Key()] = ledger.FromSnapshot(it.OnHand, f.Time(it).UnixMicro(), th.Lookup(it.Key()))
	}
	return out
}
