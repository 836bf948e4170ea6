package health

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Reading is one sample of the raw signals, as a Probe reads them from the
// running parts. Counts are totals since the stream job started.
type Reading struct {
	Received, Applied, Duplicate, Superseded, DeadLettered, Alerts int64

	// Backlog is the undelivered messages of the events subscription;
	// Oldest the publish time of the oldest (zero: none).
	Backlog int64
	Oldest  time.Time

	// LatencyP50 and LatencyP99 are publish-to-stored over recent events.
	LatencyP50, LatencyP99 time.Duration
	LastCommit             time.Time
	LastNightly            NightlyRun

	// StreamDown, when set, says why the streaming job is not running.
	StreamDown string
}

// Probe reads the signals once.
type Probe func(ctx context.Context) (Reading, error)

// Defaults of a Monitor.
const (
	defaultEvery      = time.Second
	defaultKeep       = 10 * time.Minute
	defaultStallAfter = 15 * time.Second
)

// MonitorOptions configures a Monitor; zero values take the defaults.
type MonitorOptions struct {
	// Every is the sampling period; Keep how much history History keeps.
	Every time.Duration
	Keep  time.Duration
	// StallAfter is how long nothing may be stored, with a backlog, before
	// the snapshot says Stalled. The default lets a status line refreshed
	// every few seconds say STALLED within 30 s of the last commit.
	StallAfter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Monitor is the local stack's Source: it samples a Probe every second
// and keeps the snapshots of the last ten minutes.
type Monitor struct {
	probe Probe
	o     MonitorOptions

	mu       sync.Mutex
	started  time.Time
	progress time.Time // the last commit, or the last time the backlog was empty
	cur      Snapshot
	err      error
	sampled  bool
	hist     []Snapshot // ring of at most Keep/Every
	next     int
}

var _ Source = (*Monitor)(nil)

// NewMonitor returns a Monitor of probe; Run samples.
func NewMonitor(probe Probe, o MonitorOptions) *Monitor {
	if o.Every <= 0 {
		o.Every = defaultEvery
	}
	if o.Keep <= 0 {
		o.Keep = defaultKeep
	}
	if o.StallAfter <= 0 {
		o.StallAfter = defaultStallAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now()
	return &Monitor{probe: probe, o: o, started: now, progress: now}
}

// Run samples every period until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.o.Every)
	defer t.Stop()
	for {
		m.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample reads the probe once and records the snapshot.
func (m *Monitor) sample(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, max(m.o.Every, time.Second))
	r, err := m.probe(pctx)
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sampled = true
	if err != nil {
		m.err = fmt.Errorf("health: %w", err)
		return
	}
	m.err = nil
	m.cur = m.observe(r, m.o.Now())
	capacity := int(m.o.Keep / m.o.Every)
	if len(m.hist) < capacity {
		m.hist = append(m.hist, m.cur)
	} else {
		m.hist[m.next] = m.cur
		m.next = (m.next + 1) % capacity
	}
}

// observe turns a reading at now into a snapshot, judging whether the
// stream is stalled: nothing stored for StallAfter although the backlog is
// not empty.
func (m *Monitor) observe(r Reading, now time.Time) Snapshot {
	if r.LastCommit.After(m.progress) {
		m.progress = r.LastCommit
	}
	if r.Backlog == 0 {
		m.progress = now
	}
	s := Snapshot{
		At: now, Received: r.Received, Applied: r.Applied, Duplicate: r.Duplicate, Superseded: r.Superseded,
		DeadLettered: r.DeadLettered, Alerts: r.Alerts, Backlog: r.Backlog,
		LatencyP50: r.LatencyP50, LatencyP99: r.LatencyP99, LastCommit: r.LastCommit, LastNightly: r.LastNightly,
		Stream: "running",
	}
	if !r.Oldest.IsZero() && r.Backlog > 0 {
		s.OldestUnacked = max(now.Sub(r.Oldest), 0)
	}
	if r.StreamDown != "" {
		s.Stream = r.StreamDown
	}
	if idle := now.Sub(m.progress); r.Backlog > 0 && idle >= m.o.StallAfter {
		s.Stalled, s.StalledFor = true, idle.Round(time.Second)
		switch {
		case r.StreamDown != "":
			s.Reason = "stream job " + r.StreamDown
		case r.LastCommit.IsZero():
			s.Reason = "no warehouse commit since start"
		default:
			s.Reason = fmt.Sprintf("no warehouse commit since %s", r.LastCommit.Format("15:04:05"))
		}
	}
	return s
}

// Snapshot returns the latest sample, sampling first if there is none yet.
func (m *Monitor) Snapshot(ctx context.Context) (Snapshot, error) {
	m.mu.Lock()
	sampled := m.sampled
	m.mu.Unlock()
	if !sampled {
		m.sample(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.cur, m.err
	}
	return m.cur, nil
}

// History returns the snapshots of the last Keep, oldest first.
func (m *Monitor) History() []Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Snapshot, 0, len(m.hist))
	out = append(out, m.hist[m.next:]...)
	return append(out, m.hist[:m.next]...)
}
