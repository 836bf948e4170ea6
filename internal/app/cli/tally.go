package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// restoredSQL counts what the streaming job restores at its start: the
// accepted adjustments (restore.go replays APPLIED and SUPERSEDED), their
// keys, and the live threshold changes.
const restoredSQL = `SELECT
  (SELECT count(*) FROM adjustments WHERE status IN ('APPLIED', 'SUPERSEDED')) AS events,
  (SELECT count(*) FROM (SELECT DISTINCT sku, location_id FROM adjustments WHERE status IN ('APPLIED', 'SUPERSEDED'))) AS keys,
  (SELECT count(*) FROM threshold_changes) AS changes`

// restoredLine says what the stream job restores from the warehouse wh
// (read before the stack starts), or that the warehouse is empty.
func restoredLine(ctx context.Context, wh, snapshot string) string {
	empty := fmt.Sprintf("restore   empty warehouse %s: stock starts from the snapshot %s", wh, snapshot)
	if _, err := os.Stat(filepath.Join(wh, warehouse.Adjustments)); err != nil {
		return empty
	}
	rows, err := warehouse.QueryRows(ctx, wh, restoredSQL)
	if err != nil || len(rows) != 1 {
		return fmt.Sprintf("restore   from %s (not counted: %v)", wh, err)
	}
	n := func(col string) int64 { v, _ := rows[0][col].(int64); return v }
	if n("events") == 0 && n("changes") == 0 {
		return empty
	}
	return fmt.Sprintf("restore   %s events of %s keys and %s threshold changes from %s, on top of the snapshot %s",
		console.Thousands(n("events")), console.Thousands(n("keys")), console.Thousands(n("changes")), wh, snapshot)
}

// statusText is up's status line for a snapshot: the totals since start,
// the backlog and its lag, the latency and the last commit; a STALLED line
// when nothing has been stored for a while although messages wait.
func statusText(s health.Snapshot) string {
	totals := fmt.Sprintf("received %s  applied %s  dup %s  superseded %s  dead letters %s  alerts %s",
		console.Thousands(s.Received), console.Thousands(s.Applied), console.Thousands(s.Duplicate),
		console.Thousands(s.Superseded), console.Thousands(s.DeadLettered), console.Thousands(s.Alerts))
	backlog := fmt.Sprintf("backlog %s  lag %s", console.Thousands(s.Backlog), short(s.OldestUnacked))
	if s.Stalled {
		return fmt.Sprintf("STALLED %s: %s; %s  (%s)", short(s.StalledFor), s.Reason, backlog, totals)
	}
	var b strings.Builder
	b.WriteString(totals + "  " + backlog)
	if s.LatencyP50 > 0 {
		fmt.Fprintf(&b, "  p50 %s p99 %s", short(s.LatencyP50), short(s.LatencyP99))
	}
	if s.LastCommit.IsZero() {
		b.WriteString("  nothing stored yet")
	} else {
		fmt.Fprintf(&b, "  stored %s ago", short(s.At.Sub(s.LastCommit)))
	}
	if s.Stream != "running" {
		b.WriteString("  stream " + s.Stream)
	}
	return b.String()
}

// short formats a duration for the status line: "0s", "850ms", "12s", "3m10s".
func short(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// showStatus keeps up's status line until ctx ends. On a terminal (line
// not nil) the line is redrawn every second, idle or not, so that idle
// (backlog 0, stored a while ago) and stuck (STALLED) look different;
// elsewhere a line is printed every period when a count, the backlog or
// the state changed, and at least every heartbeat.
func showStatus(ctx context.Context, line *console.Line, w io.Writer, src health.Source, period time.Duration) {
	text := func() string {
		s, err := src.Snapshot(ctx)
		if err != nil {
			return "health: " + err.Error()
		}
		return statusText(s)
	}
	if line != nil {
		stop := line.Tick(time.Second, text)
		<-ctx.Done()
		stop()
		return
	}
	var (
		last    string
		printed time.Time
	)
	console.Every(ctx, period, func() {
		s, err := src.Snapshot(ctx)
		key := fmt.Sprint(s.Received, s.Applied, s.Duplicate, s.DeadLettered, s.Alerts, s.Backlog, s.Stalled, s.Stream, err)
		if key == last && time.Since(printed) < heartbeat {
			return
		}
		last, printed = key, time.Now()
		fmt.Fprintf(w, "%s  %s\n", printed.Format("15:04:05"), text())
	})
}

// heartbeat is how often up prints its status line, when not on a
// terminal, even if nothing changed.
const heartbeat = 30 * time.Second
