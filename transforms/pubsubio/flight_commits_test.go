package pubsubio

import (
	"testing"
	"time"
)

// TestFlightCommits: the last commit and the latency percentiles over the
// window asked for, as the local stack's health monitor reads them.
func TestFlightCommits(t *testing.T) {
	f := NewFlight()
	defer f.Close()
	if s := f.Commits(time.Time{}); s != (CommitStats{}) {
		t.Errorf("no commit yet: %+v", s)
	}
	t0 := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
	f.Committed(t0, []int64{5000, 5000}) // an old, slow commit
	var recent []int64
	for i := 1; i <= 100; i++ {
		recent = append(recent, int64(i)) // 1..100 ms
	}
	f.Committed(t0.Add(time.Minute), recent)
	s := f.Commits(t0.Add(30 * time.Second))
	want := CommitStats{Last: t0.Add(time.Minute), Messages: 100, P50: 51 * time.Millisecond, P99: 100 * time.Millisecond}
	if s != want {
		t.Errorf("Commits since the second commit: %+v, want %+v", s, want)
	}
	if s := f.Commits(t0); s.Messages != 102 || s.P99 != 5*time.Second {
		t.Errorf("Commits since the first: %+v, want 102 messages, p99 5s", s)
	}
	// A commit with no latencies (threshold changes only) still counts.
	f.Committed(t0.Add(2*time.Minute), nil)
	if s := f.Commits(t0.Add(90 * time.Second)); !s.Last.Equal(t0.Add(2*time.Minute)) || s.Messages != 0 {
		t.Errorf("after a commit without messages: %+v", s)
	}
	// The samples kept are bounded.
	f.Committed(t0.Add(3*time.Minute), make([]int64, 3*commitSamples))
	if s := f.Commits(t0); s.Messages != commitSamples {
		t.Errorf("%d samples kept, want %d", s.Messages, commitSamples)
	}
}
