package transforms

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

// RestoreStats says what Restore read.
type RestoreStats struct {
	Rows       int // adjustments replayed
	Keys       int // keys restored
	Alerts     int // keys whose severity came from their last alert
	Mismatches int // rows whose replayed outcome differs from the stored one
	Took       time.Duration
}

// Restore rebuilds the ledger of every key the stream has stored anything
// for, from the warehouse at uri: it replays the APPLIED and SUPERSEDED rows
// of adjustments in the order the stream processed them, starting from ref's
// snapshot, with ref's thresholds and the dedup horizon; then it sets each
// key's severity to that of its last alert (RECOVERED is OK), which is what
// consumers were last told. The result is the state the stream had after the
// last row it stored, so a restarted job neither applies a stored event
// twice (its id is in the restored ledger) nor repeats or misses an alert.
//
// It reads every stored adjustment; see the README for the cost and for
// what Dataflow does instead.
func Restore(ctx context.Context, uri string, ref *RefData, horizon time.Duration) ([]SnapshotItem, RestoreStats, error) {
	start := time.Now()
	var st RestoreStats
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
		sku, _ := r[0].(string)
		loc, _ := r[1].(string)
		id, _ := r[2].(string)
		reasonName, _ := r[3].(string)
		qty, _ := r[4].(int64)
		at, _ := r[5].(time.Time)
		stored, _ := r[6].(string)
		reason, ok := event.ParseReason(reasonName)
		if !ok {
			return nil, st, fmt.Errorf("restore: adjustment %s has reason %q", id, reasonName)
		}
		a := event.Adjustment{EventID: id, SKU: sku, LocationID: loc, Reason: reason, Quantity: qty, EventTime: at.UnixMicro()}
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
		switch name {
		case "LOW":
			s.Severity = ledger.Low
		case "OUT":
			s.Severity = ledger.Out
		case "RECOVERED":
			s.Severity = ledger.OK
		}
		st.Alerts++
	}
	items := make([]SnapshotItem, 0, len(states))
	for k, s := range states {
		items = append(items, SnapshotItem{SKU: k.SKU, LocationID: k.LocationID, OnHand: s.OnHand, AsOf: s.MaxTime, State: s.AppendBinary(nil)})
	}
	st.Keys = len(items)
	st.Took = time.Since(start)
	if st.Mismatches > 0 {
		slog.Warn("restore: replayed outcomes differ from the stored ones (thresholds, snapshot or horizon changed since?)", "rows", st.Mismatches)
	}
	return items, st, nil
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
