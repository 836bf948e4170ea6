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

// statusText is up's status line for a snapshot, most telling first (a
// narrow terminal cuts the end): the backlog and its lag, the last commit,
// the totals since start, the latency. It is a STALLED line, with the
// reason, when nothing has been stored for a while although messages wait.
func statusText(s health.Snapshot) string {
	n := console.Thousands
	backlog := fmt.Sprintf("backlog %s lag %s", n(s.Backlog), short(s.OldestUnacked))
	totals := fmt.Sprintf("received %s applied %s dup %s superseded %s dead %s alerts %s",
		n(s.Received), n(s.Applied), n(s.Duplicate), n(s.Superseded), n(s.DeadLettered), n(s.Alerts))
	if s.Stalled {
		return oneLine(fmt.Sprintf("STALLED %s: %s  %s  %s", short(s.StalledFor), s.Reason, backlog, totals))
	}
	parts := []string{backlog}
	if s.LastCommit.IsZero() {
		parts = append(parts, "nothing stored yet")
	} else {
		parts = append(parts, "stored "+short(s.At.Sub(s.LastCommit))+" ago")
	}
	if s.Stream != "running" {
		parts = append(parts, "stream "+s.Stream)
	}
	parts = append(parts, totals)
	if s.LatencyP50 > 0 {
		parts = append(parts, fmt.Sprintf("p50 %s p99 %s", short(s.LatencyP50), short(s.LatencyP99)))
	}
	return oneLine(strings.Join(parts, "  "))
}

// oneLine folds s's line breaks into spaces: a reason may hold several.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\t", " ").Replace(s)
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
	read := func() (health.Snapshot, string, error) {
		s, err := src.Snapshot(ctx)
		if err != nil {
			return s, "health: " + err.Error(), err
		}
		return s, statusText(s), nil
	}
	if line != nil {
		// A change into or out of STALLED is also written above the
		// line, whole, to stay in the scrollback.
		stalled := false
		update := func() {
			s, text, err := read()
			if err == nil && s.Stalled != stalled {
				stalled = s.Stalled
				fmt.Fprintf(w, "%s  %s\n", s.At.Format("15:04:05"), text)
			}
			line.Set(text)
		}
		update()
		console.Every(ctx, time.Second, update)
		line.Clear()
		return
	}
	var (
		last    string
		printed time.Time
	)
	console.Every(ctx, period, func() {
		s, text, err := read()
		key := fmt.Sprint(s.Received, s.Applied, s.Duplicate, s.DeadLettered, s.Alerts, s.Backlog, s.Stalled, s.Stream, err)
		if key == last && time.Since(printed) < heartbeat {
			return
		}
		last, printed = key, time.Now()
		fmt.Fprintf(w, "%s  %s\n", printed.Format("15:04:05"), text)
	})
}

// heartbeat is how often up prints its status line, when not on a
// terminal, even if nothing changed.
const heartbeat = 30 * time.Second
