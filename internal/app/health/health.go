// Package health holds the streaming pipeline's health signals as one
// snapshot: the same signals the streaming job reports as Beam metrics on
// Dataflow, read here from the local stack. `inventory up` prints them in
// its status line, serves them at /metrics in Prometheus text format, and
// draws them on its operations page.
package health

import (
	"context"
	"time"
)

// Snapshot is the pipeline's health at one moment. Totals count since the
// local stack started.
type Snapshot struct {
	At time.Time

	// Events by outcome, and alerts raised.
	Received     int64
	Applied      int64
	Duplicate    int64
	Superseded   int64
	DeadLettered int64
	Alerts       int64

	// Backlog is the number of undelivered messages on the events
	// subscription; OldestUnacked the age of the oldest of them (0: none).
	Backlog       int64
	OldestUnacked time.Duration

	// Latency from publish to stored in the warehouse, over recent events
	// (0: no event yet).
	LatencyP50 time.Duration
	LatencyP99 time.Duration

	// LastCommit is the time of the last successful warehouse commit (zero:
	// none since start).
	LastCommit time.Time

	// LastNightly is the last nightly run the trigger knows of (zero: none).
	LastNightly NightlyRun

	// Stalled is set when nothing has been stored for StalledFor although
	// the backlog is not empty; Reason says what is known about why.
	Stalled    bool
	StalledFor time.Duration
	Reason     string

	// Stream is the streaming job's state: "running", or why it is not
	// (added for the status line and the page: a job that ended is
	// stated even while the backlog is empty).
	Stream string
}

// NightlyRun is one nightly run as the trigger reports it.
type NightlyRun struct {
	Date     string    // report day, YYYY-MM-DD
	State    string    // e.g. "running", "succeeded", "failed", "skipped"
	Finished time.Time // zero while running
	Detail   string    // the output or the error
}

// Source gives the current snapshot, and the recent ones (oldest first)
// for a chart of the last minutes.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
	History() []Snapshot
}
