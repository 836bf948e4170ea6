package stock

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
func restore(ctx context.Context, uri string, ref *refData, horizon time.Duration) ([]snapshotItem, restoreStats, error) {
	start := time.Now()
	var st restoreStats
	if _, err := warehouse.Recover(uri); err != nil {
		return nil, st, fmt.Errorf("restore: %w", err)
	}
	cols, rows, err := warehouse.QueryTable(ctx, uri, restoreAdjustmentsSQL)
	if err != nil {
		return nil, st, fmt.Errorf("restore: read adjustments: %w", err)
	}
	if err := wantColumns(cols, restoreColumns...); err != nil {
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
		res := replayStored(s, &a, stored, th, horizon)
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
func snapshotItems(states map[event.Key]*ledger.State) []snapshotItem {
	items := make([]snapshotItem, 0, len(states))
	for k, s := range states {
		items = append(items, snapshotItem{SKU: k.SKU, LocationID: k.LocationID, OnHand: s.OnHand, AsOf: s.MaxTime, State: s.AppendBinary(nil)})
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
	// ScopeRecent reads the latest stock per key from stock_levels, each
	// key's latest event time and count, and replays only the adjustments
	// of the dedup window behind the keys' latest event times: bounded in
	// what it replays, and the default on Dataflow.
	ScopeRecent = "recent"
)

// restoreLevelsSQL reads each key's latest stock_levels row: its on-hand and
// severity after the last change the stream stored.
const restoreLevelsSQL = `SELECT sku, location_id, on_hand, severity FROM (
  SELECT sku, location_id, on_hand, severity,
    ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC) AS rn
  FROM stock_levels) AS last_levels
WHERE rn = 1`

// restoreLatestSQL reads each key's newest accepted event time: the MaxTime
// its ledger had, which its dedup horizon counts back from.
const restoreLatestSQL = `SELECT sku, location_id, MAX(event_time) AS latest
FROM adjustments
WHERE status IN ('APPLIED', 'SUPERSEDED')
GROUP BY sku, location_id`

// restoreCountsSQL reads each key's latest applied count (ties go to the
// larger event_id, as in the ledger).
const restoreCountsSQL = `SELECT sku, location_id, event_id, quantity, event_time FROM (
  SELECT sku, location_id, event_id, quantity, event_time,
    ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY event_time DESC, event_id DESC) AS rn
  FROM adjustments
  WHERE reason = 'COUNTED' AND status = 'APPLIED') AS last_counts
WHERE rn = 1`

// restoreRecentSQL reads the adjustments of the event-date partitions from
// a start time on (%s: a TIMESTAMP literal, so BigQuery prunes partitions).
const restoreRecentSQL = `SELECT sku, location_id, event_id, reason, quantity, event_time, status
FROM adjustments
WHERE event_time >= TIMESTAMP '%s' AND status IN ('APPLIED', 'SUPERSEDED')
ORDER BY ingest_time, event_id`

// windowStart is where the bounded restore starts replaying a key whose
// newest accepted event time is latest (Unix µs): its horizon, less the
// ledger's sweep grace (an eighth of the horizon: ids that old may still be
// remembered), at the start of that UTC day (a partition). It follows the
// data, never the wall clock: data of any age restores alike.
func windowStart(latest int64, horizon time.Duration) time.Time {
	h := horizon.Microseconds()
	return time.UnixMicro(latest - h - h/8).UTC().Truncate(24 * time.Hour)
}

// restoreRecent rebuilds ledgers like restore, replaying a bounded part of
// the warehouse. For each key it reads the latest on-hand and severity
// (stock_levels), the newest accepted event time and the latest applied
// count; it then replays the adjustments whose event time is inside the
// dedup window behind the keys' newest event times (windowStart), starting
// from that count (or the snapshot), and folds whatever the window does not
// show into the ledger's folded sum, so that on-hand equals the stored one.
//
// The restored ledger judges every later event as the stream's ledger would
// have: it has the same count, the same newest event time (so the same
// horizon and the same too_late verdicts), every id the stream still
// remembered (a redelivery is a duplicate), and the deltas a new count
// would keep. It remembers more ids than the stream did (the whole window,
// not only each key's horizon): an event that old which the stream would
// have refused as too_late, or taken as superseded, is then a DUPLICATE if
// it was stored before. None of these change stock.
//
// Unlike restore, it reads two small aggregates over every stored adjustment
// (newest time and latest count per key), and full rows only from the
// oldest key window on: a key that has been quiet for long makes it read
// further back (docs/streaming.md).
func restoreRecent(ctx context.Context, uri string, ref *refData, horizon time.Duration) ([]snapshotItem, restoreStats, error) {
	start := time.Now()
	if horizon <= 0 {
		horizon = ledger.DefaultHorizon
	}
	r := &recentRestore{ref: ref, horizon: horizon, states: map[event.Key]*ledger.State{}}
	if _, err := warehouse.Recover(uri); err != nil {
		return nil, r.st, fmt.Errorf("restore: %w", err)
	}
	var err error
	if r.levels, err = readLevels(ctx, uri); err != nil {
		return nil, r.st, fmt.Errorf("restore: read stock_levels: %w", err)
	}
	if r.latest, err = readLatest(ctx, uri); err != nil {
		return nil, r.st, fmt.Errorf("restore: read the latest event times: %w", err)
	}
	if len(r.latest) == 0 {
		r.st.Took = time.Since(start)
		return nil, r.st, nil // nothing stored yet
	}
	if r.counts, err = readCounts(ctx, uri); err != nil {
		return nil, r.st, fmt.Errorf("restore: read the latest counts: %w", err)
	}
	if err := r.replayWindows(ctx, uri); err != nil {
		return nil, r.st, fmt.Errorf("restore: read adjustments: %w", err)
	}
	r.settle()
	items := snapshotItems(r.states)
	r.st.Keys = len(items)
	r.st.Took = time.Since(start)
	if r.st.Mismatches > 0 {
		slog.Warn("restore: on-hand replayed from a count inside the window differs from stock_levels", "keys", r.st.Mismatches)
	}
	return items, r.st, nil
}

// recentRestore is restoreRecent's work in progress: what it read of the
// stored aggregates, and the ledgers rebuilt so far.
type recentRestore struct {
	ref     *refData
	horizon time.Duration
	levels  map[event.Key]storedLevel
	latest  map[event.Key]int64 // each key's newest event time
	counts  map[event.Key]storedCount
	states  map[event.Key]*ledger.State
	st      restoreStats
}

// storedLevel is a key's last stock_levels row.
type storedLevel struct {
	onHand   int64
	severity ledger.Severity
}

// storedCount is a key's latest stored count.
type storedCount struct {
	id      string
	qty, at int64
}

func readLevels(ctx context.Context, uri string) (map[event.Key]storedLevel, error) {
	levels := map[event.Key]storedLevel{}
	err := queryEach(ctx, uri, restoreLevelsSQL, []string{"sku", "location_id", "on_hand", "severity"}, func(r []any) {
		sku, _ := r[0].(string)
		loc, _ := r[1].(string)
		onHand, _ := r[2].(int64)
		sev, _ := r[3].(string)
		levels[event.Key{SKU: sku, LocationID: loc}] = storedLevel{onHand, ledger.ParseSeverity(sev)}
	})
	return levels, err
}

func readLatest(ctx context.Context, uri string) (map[event.Key]int64, error) {
	latest := map[event.Key]int64{}
	err := queryEach(ctx, uri, restoreLatestSQL, []string{"sku", "location_id", "latest"}, func(r []any) {
		sku, _ := r[0].(string)
		loc, _ := r[1].(string)
		at, _ := r[2].(time.Time)
		latest[event.Key{SKU: sku, LocationID: loc}] = at.UnixMicro()
	})
	return latest, err
}

func readCounts(ctx context.Context, uri string) (map[event.Key]storedCount, error) {
	counts := map[event.Key]storedCount{}
	err := queryEach(ctx, uri, restoreCountsSQL, []string{"sku", "location_id", "event_id", "quantity", "event_time"}, func(r []any) {
		sku, _ := r[0].(string)
		loc, _ := r[1].(string)
		id, _ := r[2].(string)
		qty, _ := r[3].(int64)
		at, _ := r[4].(time.Time)
		counts[event.Key{SKU: sku, LocationID: loc}] = storedCount{id, qty, at.UnixMicro()}
	})
	return counts, err
}

// fromOf is where key k's window starts: a horizon (and the sweep grace)
// behind its own newest event.
func (r *recentRestore) fromOf(k event.Key) int64 {
	return windowStart(r.latest[k], r.horizon).UnixMicro()
}

// state returns key k's ledger, started at its base: its ledger before its
// window, its current count if that is older than the window (else the
// snapshot, and the window's replay applies the count).
func (r *recentRestore) state(k event.Key, th int64) *ledger.State {
	if s := r.states[k]; s != nil {
		return s
	}
	s := r.ref.Initial(k, th)
	c, ok := r.counts[k]
	if ok && c.at < r.fromOf(k) && (!s.HasCount || ledger.CountsAfter(c.at, c.id, s.CountTime, s.CountEventID)) {
		s = ledger.FromSnapshot(c.qty, c.at, th)
		s.CountEventID = c.id
	}
	r.states[k] = s
	return s
}

// replayWindows replays every key's stored adjustments of its window, read
// from the oldest window's start on.
func (r *recentRestore) replayWindows(ctx context.Context, uri string) error {
	from := windowStart(slices.Min(slices.Collect(maps.Values(r.latest))), r.horizon)
	var err error
	qerr := queryEach(ctx, uri, fmt.Sprintf(restoreRecentSQL, from.Format("2006-01-02 15:04:05")), restoreColumns, func(row []any) {
		a, stored, aerr := adjustmentOf(row)
		if aerr != nil {
			if err == nil {
				err = aerr
			}
			return
		}
		k := a.Key()
		if a.EventTime < r.fromOf(k) {
			return // before this key's window
		}
		th := r.ref.Threshold(k)
		replayStored(r.state(k, th), &a, stored, th, r.horizon)
		r.st.Rows++
	})
	if qerr != nil {
		return qerr
	}
	return err
}

// settle gives every key with stored events its ledger, and lays the
// stored on-hand and severity over what the replay left: the deltas between
// a count and the window are not read, they are what the stored on-hand says
// they sum to.
func (r *recentRestore) settle() {
	for k, at := range r.latest {
		s := r.state(k, r.ref.Threshold(k))
		l, stored := r.levels[k]
		switch kf := r.fromOf(k); {
		case !stored:
			// On-hand never changed: the base and the window say it all.
		case !s.HasCount || s.CountTime < kf:
			// The deltas between the count and the window are not read:
			// they are what the stored on-hand says they sum to.
			if d := l.onHand - s.OnHand; d != 0 {
				s.Folded += d
				s.OnHand += d
				s.FoldedThrough = max(s.FoldedThrough, kf-1)
			}
		case s.OnHand != l.onHand:
			r.st.Mismatches++
		}
		s.MaxTime = max(s.MaxTime, at)
		if stored && l.severity != ledger.Unknown {
			s.Severity = l.severity
			r.st.Alerts++
		}
	}
}

// replayStored applies a stored adjustment to its key's ledger again. A row
// stored as applied or superseded that the ledger now finds too late was a
// too_late event that `inventory replay-late` checked and the stream then
// accepted (ApplyChecked): the stored outcome stands.
func replayStored(s *ledger.State, a *event.Adjustment, stored string, threshold int64, horizon time.Duration) ledger.Result {
	res := s.Apply(a, threshold, horizon)
	if res.Outcome == ledger.TooLate && (stored == warehouse.StatusApplied || stored == warehouse.StatusSuperseded) {
		res = s.ApplyChecked(a, threshold, horizon)
	}
	return res
}

// restoreColumns are the columns of restoreAdjustmentsSQL and restoreRecentSQL.
var restoreColumns = []string{"sku", "location_id", "event_id", "reason", "quantity", "event_time", "status"}

// queryEach runs query on the warehouse at uri, checks its columns and
// calls row for each row.
func queryEach(ctx context.Context, uri, query string, columns []string, row func([]any)) error {
	cols, rows, err := warehouse.QueryTable(ctx, uri, query)
	if err != nil {
		return err
	}
	if err := wantColumns(cols, columns...); err != nil {
		return err
	}
	for _, r := range rows {
		row(r)
	}
	return nil
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
