package health

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fixed is a Source that always returns one snapshot.
type fixed struct {
	s   Snapshot
	err error
}

func (f fixed) Snapshot(context.Context) (Snapshot, error) { return f.s, f.err }
func (f fixed) History() []Snapshot                        { return []Snapshot{f.s} }

// TestMetricsHandler: every signal of a snapshot is in the Prometheus text
// at /metrics, under its documented name.
func TestMetricsHandler(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	src := fixed{s: Snapshot{
		At: at, Received: 600, Applied: 590, Duplicate: 6, Superseded: 3, DeadLettered: 4, Alerts: 30,
		Backlog: 12, OldestUnacked: 2500 * time.Millisecond, LatencyP50: 120 * time.Millisecond, LatencyP99: 900 * time.Millisecond,
		LastCommit:  at.Add(-time.Second),
		LastNightly: NightlyRun{Date: "2026-03-03", State: "succeeded", Finished: at.Add(-time.Hour)},
		Stalled:     true, StalledFor: 20 * time.Second, Reason: "no warehouse commit", Stream: "running",
	}}
	body, code := get(t, MetricsHandler(src))
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		"# TYPE inventory_events_total counter",
		`inventory_events_total{outcome="received"} 600`,
		`inventory_events_total{outcome="applied"} 590`,
		`inventory_events_total{outcome="duplicate"} 6`,
		`inventory_events_total{outcome="superseded"} 3`,
		`inventory_events_total{outcome="dead_lettered"} 4`,
		"inventory_alerts_total 30",
		"# TYPE inventory_backlog_messages gauge",
		"inventory_backlog_messages 12",
		"inventory_oldest_unacked_message_age_seconds 2.5",
		`inventory_publish_to_stored_latency_seconds{quantile="0.5"} 0.12`,
		`inventory_publish_to_stored_latency_seconds{quantile="0.99"} 0.9`,
		"inventory_last_commit_timestamp_seconds 1.772600766e+09",
		"inventory_stalled 1",
		"inventory_stalled_seconds 20",
		"inventory_stream_up 1",
		`inventory_nightly_last_run_info{date="2026-03-03",state="succeeded"} 1`,
		"inventory_nightly_last_run_finished_timestamp_seconds 1.772597167e+09",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestMetricsHandlerError: a source that cannot read answers 500, not
// zeros that look like an idle pipeline.
func TestMetricsHandlerError(t *testing.T) {
	body, code := get(t, MetricsHandler(fixed{err: errors.New("prism unreachable")}))
	if code != http.StatusInternalServerError || !strings.Contains(body, "prism unreachable") {
		t.Errorf("GET /metrics with a failing source: %d %q, want 500 naming the error", code, body)
	}
}

func get(t *testing.T, h http.Handler) (string, int) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// TestMonitorStalls walks a monitor through idle, busy and stuck readings
// on a clock of its own.
func TestMonitorStalls(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
	now := start
	var r Reading
	m := NewMonitor(func(context.Context) (Reading, error) { return r, nil },
		MonitorOptions{Every: time.Second, Keep: 5 * time.Second, StallAfter: 15 * time.Second, Now: func() time.Time { return now }})
	step := func(d time.Duration) Snapshot {
		t.Helper()
		now = now.Add(d)
		m.sample(context.Background())
		s, err := m.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Idle for a minute: an empty backlog is never stalled.
	if s := step(time.Minute); s.Stalled {
		t.Fatalf("idle: stalled %+v", s)
	}
	// Messages arrive and are stored: busy, not stalled.
	r = Reading{Received: 10, Applied: 10, Backlog: 5, Oldest: now.Add(8 * time.Second), LastCommit: now.Add(10 * time.Second)}
	if s := step(10 * time.Second); s.Stalled || s.OldestUnacked != 2*time.Second {
		t.Fatalf("busy: %+v", s)
	}
	// Nothing stored any more, messages waiting: stalled once StallAfter
	// has passed since the last commit.
	if s := step(14 * time.Second); s.Stalled {
		t.Fatalf("14 s after the last commit: stalled already %+v", s)
	}
	s := step(time.Second)
	if !s.Stalled || s.StalledFor != 15*time.Second || !strings.Contains(s.Reason, "no warehouse commit since") {
		t.Fatalf("15 s after the last commit: %+v, want stalled for 15s with a reason", s)
	}
	// The job ended: the reason says so.
	r.StreamDown = "failed: disk full"
	if s := step(time.Second); !s.Stalled || s.Reason != "stream job failed: disk full" || s.Stream != "failed: disk full" {
		t.Fatalf("job down: %+v", s)
	}
	// History keeps Keep/Every snapshots, oldest first.
	for range 6 {
		step(time.Second)
	}
	h := m.History()
	if len(h) != 5 || !h[0].At.Before(h[4].At) || !h[4].At.Equal(now) {
		t.Errorf("history: %d snapshots, first %v last %v; want 5 ending now", len(h), h[0].At, h[len(h)-1].At)
	}
}
