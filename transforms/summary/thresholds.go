package summary

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// thresholdChangesSQL reads the live threshold changes made before a time:
// those the stream applied, and so judged the day's events with.
const thresholdChangesSQL = `SELECT change_id, sku, location_id, threshold, changed_at FROM threshold_changes
WHERE changed_at < %s`

// readThresholdChanges returns the live threshold changes recorded in the
// warehouse at wh (threshold_changes) made before end (Unix µs), by SKU,
// in the order they apply ((changed_at, change_id), as the stream orders
// them). A redelivered change is read once. wh "" reads nothing.
func readThresholdChanges(ctx context.Context, wh string, end int64) (map[string][]ledger.Change, error) {
	if wh == "" {
		return nil, nil
	}
	rows, err := warehouse.QueryRows(ctx, wh, fmt.Sprintf(thresholdChangesSQL, warehouse.TimestampSQL(wh, end)))
	if err != nil {
		return nil, fmt.Errorf("read threshold_changes of %s: %w", wh, err)
	}
	out := map[string][]ledger.Change{}
	seen := map[string]bool{}
	for _, r := range rows {
		id := warehouse.AsString(r["change_id"])
		if seen[id] {
			continue
		}
		seen[id] = true
		at, _ := r["changed_at"].(time.Time)
		c := ledger.Change{ID: id, SKU: warehouse.AsString(r["sku"]), LocationID: warehouse.AsString(r["location_id"]),
			Threshold: warehouse.AsInt(r["threshold"]), At: at.UnixMicro()}
		out[c.SKU] = append(out[c.SKU], c)
	}
	for _, cs := range out {
		slices.SortFunc(cs, func(a, b ledger.Change) int { return cmp.Or(cmp.Compare(a.At, b.At), cmp.Compare(a.ID, b.ID)) })
	}
	return out, nil
}

// LineOf returns the threshold of k over time: the rules of base (the
// thresholds file), then each live change of k's rules (changes: those of
// k's SKU, in order) from its time on, resolved as the stream resolves
// them (ledger.Effective).
func LineOf(k event.Key, base *ledger.Thresholds, changes []ledger.Change) Line {
	l := Line{Base: base.Lookup(k)}
	if len(changes) == 0 {
		return l
	}
	live := &ledger.Live{}
	cur := l.Base
	for i := range changes {
		c := &changes[i]
		if !c.Wild() && c.LocationID != k.LocationID {
			continue
		}
		live.Set(c, nil)
		if th := ledger.Effective(k, base, live); th != cur {
			l.Steps = append(l.Steps, Step{At: c.At, Threshold: th})
			cur = th
		}
	}
	return l
}

// streamThresholdsSQL reads the threshold the stream last judged each key
// against before a time (%s: a TIMESTAMP literal): the threshold column of
// the key's latest stock_levels row, by processed_at as in streamingFn.
const streamThresholdsSQL = `SELECT sku, location_id, threshold FROM stock_levels
WHERE event_time < %s AND threshold IS NOT NULL
QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1`

// ReadStreamThresholds returns the thresholds of a run given no thresholds
// file: one rule per key, the threshold of its latest stock_levels row
// before end (Unix µs), which is what the stream judged it against, with
// default def for keys the stream never changed. A key that a live change
// in changes (by SKU, as readThresholdChanges returns them) concerns gets
// no rule: its stored threshold may already be the change's, and a rule
// for the key would hide a change for its whole SKU (ledger.Effective), so
// it is judged against def until the first change, then as the changes
// say. wh "" gives def everywhere.
func ReadStreamThresholds(ctx context.Context, wh string, end int64, changes map[string][]ledger.Change, def int64) (*ledger.Thresholds, error) {
	th := ledger.NewThresholds(def)
	if wh == "" {
		return th, nil
	}
	rows, err := warehouse.QueryRows(ctx, wh, fmt.Sprintf(streamThresholdsSQL, warehouse.TimestampSQL(wh, end)))
	if err != nil {
		return nil, fmt.Errorf("read the stream's thresholds from stock_levels of %s: %w", wh, err)
	}
	for _, r := range rows {
		k := event.Key{SKU: warehouse.AsString(r["sku"]), LocationID: warehouse.AsString(r["location_id"])}
		if changedLive(k, changes[k.SKU]) {
			continue
		}
		th.Add(ledger.Rule{SKU: k.SKU, LocationID: k.LocationID, Threshold: warehouse.AsInt(r["threshold"])})
	}
	return th, nil
}

// changedLive reports whether one of changes (all of k's SKU) applies to k.
func changedLive(k event.Key, changes []ledger.Change) bool {
	for i := range changes {
		if changes[i].Wild() || changes[i].LocationID == k.LocationID {
			return true
		}
	}
	return false
}
