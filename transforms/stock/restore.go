package stock

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// restoreAdjustmentsSQL reads what the stream stored, in the order it
// processed it (ingest_time is strictly increasing per stock DoFn instance,
// and one key is processed by one instance at a time). DuckDB and BigQuery
// both run it.
const restoreAdjustmentsSQL = `SELECT sku, location_id, event_id, reason, quantity, event_time, status
FROM adjustments
WHERE status IN ('APPLIED', 'SUPERSEDED')
ORDER BY ingest_time, event_id`

// restoreAlertsSQL reads the last alert of each key.
const restoreAlertsSQL = `SELECT sku, location_id, severity FROM (
  SELECT sku, location_id, severity,
    ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY alert_time DESC, alert_id DESC) AS rn
  FROM low_stock_alerts) AS last_alerts
WHERE rn = 1`

// restoreStats says what restore read.
type restoreStats struct {
	Rows       int // adjustments replayed
	Keys       int // keys restored
	Alerts     int // keys whose severity came from their last alert
	Mismatches int // rows whose replayed outcome differs from the stored one
	Took       time.Duration
}

// restore rebuilds the ledger of every key the stream has stored anything
// for, from the warehouse at uri: it replays the APPLIED and SUPERSEDED rows
// of adjustments in the order the stream processed them, starting from ref's
// snapshot, with ref's thresholds and the dedup horizon; then it sets each
// key's severity to that of its last alert (RECOVERED is OK), which is what
// consumers were last told. The result is the state the stream had after the
// last row it stored, so a restarted job neither applies a stored event
// twice (its id is in the restored ledger) nor repeats or misses an alert.
//
// It reads every stored adjustment; see docs/streaming.md for the cost and
// for what Dataflow does instead.
func restore(ctx context.Context, uri string, ref *RefData, horizon time.Duration) ([]SnapshotItem, restoreStats, error) {
	start := time.Now()
	var st restoreStats
	if _, err := warehouse.Recover(uri); err != nil {
		return nil, st, fmt.Errorf("restore: %w", err)
	}
	cols, rows, err := warehouse.QueryTable(ctx, uri, restoreAdjustmentsSQL)
	if err != nil {
		return nil, st, fmt.Errorf("restore: read adjustments: %w", err)
	}
	if err := wantColumns(cols, "sku", "location_id", "event_id", "reason", "quantity", "event_time", "status"); err != nil {
		return nil, st, fmt.Errorf("restore: read adjustments: %w", err)
	}
	states := map[event.Key]*ledger.State{}
	for _, r := range rows {
		a, stored, err := adjustmentOf(r)
		if err != nil {
			return nil, st, fmt.Errorf("restore: %w", err)
		}
		k := a.Key()
		th := ref.Threshold(k)
		s := states[k]
		if s == nil {
			s = ref.Initial(k, th)
			states[k] = s
		}
		res := s.Apply(&a, th, horizon)
		if stored != status(res.Outcome) {
			st.Mismatches++
		}
		st.Rows++
	}
	_, alerts, err := warehouse.QueryTable(ctx, uri, restoreAlertsSQL)
	if err != nil {
		return nil, st, fmt.Errorf("restore: read alerts: %w", err)
	}
	for _, r := range alerts {
		sku, _ := r[0].(string)
		loc, _ := r[1].(string)
		name, _ := r[2].(string)
		k := event.Key{SKU: sku, LocationID: loc}
		s := states[k]
		if s == nil {
			continue // an alert without adjustments: nothing to restore
		}
		if sev := ledger.ParseSeverity(name); sev != ledger.Unknown {
			s.Severity = sev
		}
		st.Alerts++
	}
	items := snapshotItems(states)
	st.Keys = len(items)
	st.Took = time.Since(start)
	if st.Mismatches > 0 {
		slog.Warn("restore: replayed outcomes differ from the stored ones (thresholds, snapshot or horizon changed since?)", "rows", st.Mismatches)
	}
	return items, st, nil
}

// snapshotItems turns restored ledgers into the side input's items.
func snapshotItems(states map[event.Key]*ledger.State) []SnapshotItem {
	items := make([]SnapshotItem, 0, len(states))
	for k, s := range states {
		items = append(items, SnapshotItem{SKU: k.SKU, LocationID: k.LocationID, OnHand: s.OnHand, AsOf: s.MaxTime, State: s.AppendBinary(nil)})
	}
	return items
}

func wantColumns(got []string, want ...string) error {
	if len(got) != len(want) {
		return fmt.Errorf("got columns %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("got columns %v, want %v", got, want)
		}
	}
	return nil
}

// Restore scopes (ReferenceOptions.RestoreScope).
const (
	// ScopeFull replays every stored adjustment: exact, and the default
	// off Dataflow, where the local warehouse is small and fast to scan.
	ScopeFull = "full"
	// ScopeRecent reads the latest stock per key from stock_levels and
	// only the adjustments inside the dedup horizon (their event-date
	// partitions): bounded, and the default on Dataflow.
	ScopeRecent = "recent"
)

// restoreLevelsSQL reads each key's latest stock_levels row: its on-hand and
// severity after the last change the stream stored.
const restoreLevelsSQL = `SELECT sku, location_id, on_hand, severity, event_time FROM (
  SELECT sku, location_id, on_hand, severity, event_time,
    ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC) AS rn
  FROM stock_levels) AS last_levels
WHERE rn = 1`

// restoreRecentSQL reads the adjustments of the event-date partitions from
// a start time on (%s: a TIMESTAMP literal, so BigQuery prunes partitions).
const restoreRecentSQL = `SELECT sku, location_id, event_id, reason, quantity, event_time, status
FROM adjustments
WHERE event_time >= TIMESTAMP '%s' AND status IN ('APPLIED', 'SUPERSEDED')
ORDER BY ingest_time, event_id`

// restoreRecent rebuilds ledgers like restore, reading a bounded part of
// the warehouse: each key's latest on-hand and severity from stock_levels,
// and the adjustments whose event time is at most horizon plus a day before
// now. Each key starts from a count at the start of that window (or from
// ref's snapshot, if it is newer), the window's adjustments are replayed on
// it, and the count is then set so that on-hand equals the stored one.
//
// So every id inside the window is remembered (a redelivery is a
// duplicate), and a late event from before the window is never applied: it
// is taken as superseded by the window's count. That is where it differs
// from restore: an unseen event older than the window, which the full
// replay could still apply, is recorded as SUPERSEDED instead.
func restoreRecent(ctx context.Context, uri string, ref *RefData, horizon time.Duration, now time.Time) ([]SnapshotItem, restoreStats, error) {
	start := time.Now()
	var st restoreStats
	if horizon <= 0 {
		horizon = ledger.DefaultHorizon
	}
	if _, err := warehouse.Recover(uri); err != nil {
		return nil, st, fmt.Errorf("restore: %w", err)
	}
	from := now.UTC().Add(-horizon - 24*time.Hour).Truncate(24 * time.Hour)
	type level struct {
		onHand   int64
		severity ledger.Severity
		at       int64
	}
	cols, rows, err := warehouse.QueryTable(ctx, uri, restoreLevelsSQL)
	if err != nil {
		return nil, st, fmt.Errorf("restore: read stock_levels: %w", err)
	}
	if err := wantColumns(cols, "sku", "location_id", "on_hand", "severity", "event_time"); err != nil {
		return nil, st, fmt.Errorf("restore: read stock_levels: %w", err)
	}
	levels := make(map[event.Key]level, len(rows))
	for _, r := range rows {
		sku, _ := r[0].(string)
		loc, _ := r[1].(string)
		onHand, _ := r[2].(int64)
		sev, _ := r[3].(string)
		at, _ := r[4].(time.Time)
		levels[event.Key{SKU: sku, LocationID: loc}] = level{onHand, ledger.ParseSeverity(sev), at.UnixMicro()}
	}

	cols, rows, err = warehouse.QueryTable(ctx, uri, fmt.Sprintf(restoreRecentSQL, from.Format("2006-01-02 15:04:05")))
	if err != nil {
		return nil, st, fmt.Errorf("restore: read adjustments: %w", err)
	}
	if err := wantColumns(cols, "sku", "location_id", "event_id", "reason", "quantity", "event_time", "status"); err != nil {
		return nil, st, fmt.Errorf("restore: read adjustments: %w", err)
	}
	windowCount := from.UnixMicro() - 1
	base := func(k event.Key, th int64) *ledger.State {
		it, ok := ref.Stock.Get(k)
		if ok && max(it.AsOf, ref.AsOf) > windowCount {
			return ref.Initial(k, th) // a snapshot inside the window is a real count
		}
		// Before the window: the snapshot's stock, corrected below from
		// stock_levels if the key has changed since.
		return ledger.FromSnapshot(it.OnHand, windowCount, th)
	}
	states := map[event.Key]*ledger.State{}
	for _, r := range rows {
		a, _, err := adjustmentOf(r)
		if err != nil {
			return nil, st, fmt.Errorf("restore: %w", err)
		}
		k := a.Key()
		th := ref.Threshold(k)
		s := states[k]
		if s == nil {
			s = base(k, th)
			states[k] = s
		}
		s.Apply(&a, th, horizon)
		st.Rows++
	}
	for k, l := range levels {
		s := states[k]
		if s == nil {
			s = ledger.FromSnapshot(l.onHand, windowCount, ref.Threshold(k))
			s.MaxTime = max(s.MaxTime, l.at)
			states[k] = s
		} else if s.HasCount && s.CountTime == windowCount && s.CountEventID == "" {
			// No real count in the window: the window's count is what the
			// stored on-hand says it was.
			d := l.onHand - s.OnHand
			s.CountQty += d
			s.OnHand += d
		} else if s.OnHand != l.onHand {
			st.Mismatches++
		}
		if l.severity != ledger.Unknown {
			s.Severity = l.severity
			st.Alerts++
		}
	}
	items := snapshotItems(states)
	st.Keys = len(items)
	st.Took = time.Since(start)
	if st.Mismatches > 0 {
		slog.Warn("restore: on-hand replayed from the window's counts differs from stock_levels", "keys", st.Mismatches)
	}
	return items, st, nil
}

// adjustmentOf reads one row of restoreAdjustmentsSQL or restoreRecentSQL.
func adjustmentOf(r []any) (event.Adjustment, string, error) {
	sku, _ := r[0].(string)
	loc, _ := r[1].(string)
	id, _ := r[2].(string)
	reasonName, _ := r[3].(string)
	qty, _ := r[4].(int64)
	at, _ := r[5].(time.Time)
	stored, _ := r[6].(string)
	reason, ok := event.ParseReason(reasonName)
	if !ok {
		return event.Adjustment{}, "", fmt.Errorf("adjustment %s has reason %q", id, reasonName)
	}
	return event.Adjustment{EventID: id, SKU: sku, LocationID: loc, Reason: reason, Quantity: qty, EventTime: at.UnixMicro()}, stored, nil
}
