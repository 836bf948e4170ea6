package cli

import (
	"testing"
	"time"

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
