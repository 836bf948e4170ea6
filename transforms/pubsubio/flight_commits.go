package pubsubio

import (
	"slices"
	"sync"
	"time"
)

// commitLog is what a Flight's commit sink reports: the time of its last
// warehouse commit and the publish-to-stored latency of the last
// commitSamples messages it stored. The local stack's health monitor reads
// it (Flight.Commits); on Dataflow the sink's Beam metrics say the same.
type commitLog struct {
	mu      sync.Mutex
	last    time.Time
	at      [commitSamples]int64 // unix ms of the commit of each sample
	ms      [commitSamples]int64 // its latency, ms
	next, n int
}

// commitSamples bounds the latencies a Flight keeps: at the local stack's
// rates, more than a minute of messages.
const commitSamples = 8192

// Committed records a successful warehouse commit of the sink at at, with
// the publish-to-stored milliseconds of the messages it stored.
func (f *Flight) Committed(at time.Time, latencyMs []int64) {
	c := &f.commits
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.last) {
		c.last = at
	}
	t := at.UnixMilli()
	for _, ms := range latencyMs {
		c.at[c.next], c.ms[c.next] = t, ms
		c.next = (c.next + 1) % commitSamples
		c.n = min(c.n+1, commitSamples)
	}
}

// CommitStats is what Flight.Commits reports.
type CommitStats struct {
	Last     time.Time     // the last successful commit (zero: none)
	Messages int           // messages stored since the window's start (up to the samples kept)
	P50, P99 time.Duration // their publish-to-stored latency (0: none)
}

// Commits returns the last commit time and the latency percentiles of the
// messages stored since since.
func (f *Flight) Commits(since time.Time) CommitStats {
	c := &f.commits
	c.mu.Lock()
	s := CommitStats{Last: c.last}
	from := since.UnixMilli()
	var recent []int64
	for i := range c.n {
		if c.at[i] >= from {
			recent = append(recent, c.ms[i])
		}
	}
	c.mu.Unlock()
	if len(recent) == 0 {
		return s
	}
	slices.Sort(recent)
	q := func(p float64) time.Duration {
		i := min(int(p*float64(len(recent))), len(recent)-1)
		return time.Duration(recent[i]) * time.Millisecond
	}
	s.Messages, s.P50, s.P99 = len(recent), q(0.50), q(0.99)
	return s
}
