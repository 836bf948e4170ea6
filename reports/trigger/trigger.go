// Package trigger is the Cloud Run service that starts the nightly summary job.
//
// The service answers POST /v1/nightly (optional date=YYYY-MM-DD, default:
// yesterday in the configured time zone) by launching the nightly batch job
// through a Launcher, GET /v1/nightly/{date} with the run's status, and
// /healthz. Launches are idempotent per date: a trigger for a date whose job is
// running or done returns that job instead of starting another.
//
// Two Launchers exist: DataflowLauncher starts the nightly Flex Template
// through the Dataflow API (production), LocalLauncher runs a function in the
// background (the local stack, on Prism). RequireOIDC verifies Cloud
// Scheduler's OIDC token in production; EnsureSchedulerJob creates or updates
// the Cloud Scheduler job, and StartLocalCron fires the same cron spec at the
// same handler locally.
package trigger

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Defaults shared by the service, the scheduler job and the local cron.
const (
	// SchedulerJobID is the Cloud Scheduler job that fires the nightly run.
	SchedulerJobID = "nightly-inventory-summary"
	// DefaultSchedule is the cron spec of the nightly run (03:00 every day).
	DefaultSchedule = "0 3 * * *"
	// jobNamePrefix prefixes the per-date job name: nightly-summary-2026-11-24.
	jobNamePrefix = "nightly-summary"
	// DateLayout is the only accepted report date format.
	DateLayout = "2006-01-02"
)

// State is the life-cycle state of a nightly run, independent of the engine.
type State string

// States of a run. Pending and Running are active; the others are terminal.
const (
	StatePending   State = "PENDING"
	StateRunning   State = "RUNNING"
	StateDone      State = "DONE"
	StateFailed    State = "FAILED"
	StateCancelled State = "CANCELLED"
)

// Active reports whether a run in state s may still finish.
func (s State) Active() bool { return s == StatePending || s == StateRunning }

// Run is one launch of the nightly job for a report date.
type Run struct {
	Date      string    `json:"date"`
	JobID     string    `json:"job_id"`
	JobName   string    `json:"job_name"`
	State     State     `json:"state"`
	Engine    string    `json:"engine"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Existing is true when a launch found the run already active or done
	// instead of starting it.
	Existing bool   `json:"existing"`
	Error    string `json:"error,omitempty"`
	// Result is what the engine reported on success (for example the local
	// runner's job id or output location).
	Result string `json:"result,omitempty"`
}

// ErrNotFound is returned by Launcher.Lookup when no run exists for a date.
var ErrNotFound = errors.New("trigger: no run for date")

// errBusy is returned by Launcher.Launch when as many runs as it allows are
// running: the caller should retry later (the service answers 429).
var errBusy = errors.New("trigger: too many runs at once")

// Launcher starts and inspects nightly runs. Implementations are idempotent
// per date: Launch returns the existing run when one is active or done, and
// starts a new one otherwise (never, failed or cancelled).
type Launcher interface {
	Launch(ctx context.Context, date string) (Run, error)
	// Lookup returns the latest run for date, or ErrNotFound.
	Lookup(ctx context.Context, date string) (Run, error)
}

var dateRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// parseDate checks that s is a real calendar date written YYYY-MM-DD.
func parseDate(s string) (time.Time, error) {
	if !dateRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD", truncate(s, 32))
	}
	d, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: %w", s, err)
	}
	return d, nil
}

// JobName is the engine job name for a report date, e.g.
// nightly-summary-2026-11-24. It is a valid Dataflow job name, and being
// derived from the date alone it makes retries land on the same job.
func JobName(date string) string { return jobNamePrefix + "-" + date }

// Yesterday is the default report date: the day before now in loc.
func Yesterday(now time.Time, loc *time.Location) string {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC).Format(DateLayout)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
