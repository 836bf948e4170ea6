package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/app/health"
)

// TestStatusText: what up's status line says for an idle, a busy and a
// stalled stream.
func TestStatusText(t *testing.T) {
	at := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	totals := health.Snapshot{At: at, Received: 1234, Applied: 1200, Duplicate: 20, Superseded: 3, DeadLettered: 14, Alerts: 30, Stream: "running"}
	for _, tc := range []struct {
		name string
		edit func(*health.Snapshot)
		want string
	}{
		{"nothing yet", func(s *health.Snapshot) { *s = health.Snapshot{At: at, Stream: "running"} },
			"backlog 0 lag 0s  nothing stored yet  received 0 applied 0 dup 0 superseded 0 dead 0 alerts 0"},
		{"idle", func(s *health.Snapshot) { s.LastCommit = at.Add(-2 * time.Minute) },
			"backlog 0 lag 0s  stored 2m0s ago  received 1,234 applied 1,200 dup 20 superseded 3 dead 14 alerts 30"},
		{"busy", func(s *health.Snapshot) {
			s.Backlog, s.OldestUnacked, s.LatencyP50, s.LatencyP99, s.LastCommit = 250, 1500*time.Millisecond, 180*time.Millisecond, 1200*time.Millisecond, at.Add(-300*time.Millisecond)
		},
			"backlog 250 lag 1.5s  stored 300ms ago  received 1,234 applied 1,200 dup 20 superseded 3 dead 14 alerts 30  p50 180ms p99 1.2s"},
		{"stalled", func(s *health.Snapshot) {
			s.Backlog, s.OldestUnacked, s.LastCommit = 40, 31*time.Second, at.Add(-21*time.Second)
			s.Stalled, s.StalledFor, s.Reason = true, 21*time.Second, "no warehouse commit since 11:59:39"
		},
			"STALLED 21s: no warehouse commit since 11:59:39  backlog 40 lag 31s  received 1,234 applied 1,200 dup 20 superseded 3 dead 14 alerts 30"},
		{"job ended", func(s *health.Snapshot) { s.LastCommit, s.Stream = at.Add(-time.Second), "failed: boom\nwhere" },
			"backlog 0 lag 0s  stored 1s ago  stream failed: boom where  received 1,234 applied 1,200 dup 20 superseded 3 dead 14 alerts 30"},
	} {
		s := totals
		tc.edit(&s)
		if got := statusText(s); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// stalledSource is a health.Source whose stream is stalled.
type stalledSource struct{ s health.Snapshot }

func (f stalledSource) Snapshot(context.Context) (health.Snapshot, error) { return f.s, nil }
func (f stalledSource) History() []health.Snapshot                        { return nil }

// TestShowStatusStalled: on a terminal, a STALLED snapshot is drawn on the
// line and also written above it, whole, with its time, so that it stays
// in the scrollback.
func TestShowStatusStalled(t *testing.T) {
	at := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	src := stalledSource{health.Snapshot{At: at, Backlog: 3, Stalled: true, StalledFor: 20 * time.Second,
		Reason: "stream job failed: disk full", Stream: "failed: disk full"}}
	var out strings.Builder
	line := console.NewLineWidth(&out, 60)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one update, then stop
	showStatus(ctx, line, line.Writer(&out), src, time.Second)
	want := "12:00:00  " + statusText(src.s) + "\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("no whole STALLED line above the status line:\n%q\nwant %q", out.String(), want)
	}
	if !strings.Contains(out.String(), "\rSTALLED 20s: stream job failed") {
		t.Errorf("the status line does not show STALLED:\n%q", out.String())
	}
}
