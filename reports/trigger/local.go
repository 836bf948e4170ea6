package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
)

// RunFunc runs the nightly job for a report date to completion (on Prism, in
// the local stack) and returns what identifies its result, such as the
// engine's job id or the report location.
type RunFunc func(ctx context.Context, date string) (result string, err error)

// LocalLauncher is the Launcher of the local stack: it runs a RunFunc in the
// background, one run per date at a time, and at most MaxRunning at once
// (errBusy beyond). A run that is running or done is returned instead of
// started again; a failed or cancelled one is retried.
type LocalLauncher struct {
	// MaxRunning caps the runs in progress (each is a nightly job on
	// Prism, a process of its own with the command runner). Set it before
	// the first Launch. Zero: DefaultMaxRunning.
	MaxRunning int

	run RunFunc
	log *slog.Logger
	now func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	seq    int
	runs   map[string]Run
}

var _ Launcher = (*LocalLauncher)(nil)

// DefaultMaxRunning is the default cap of a LocalLauncher's runs at once.
const DefaultMaxRunning = 2

// NewLocalLauncher returns a LocalLauncher running run. Close stops it.
func NewLocalLauncher(run RunFunc, logger *slog.Logger) *LocalLauncher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &LocalLauncher{run: run, log: logger, now: clock.Now, ctx: ctx, cancel: cancel, runs: map[string]Run{}}
}

// Launch starts the run for date in the background, or returns the one that is
// running or done. The run outlives ctx (the HTTP request); Close ends it.
func (l *LocalLauncher) Launch(_ context.Context, date string) (Run, error) {
	if _, err := parseDate(date); err != nil {
		return Run{}, fmt.Errorf("local launch: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Run{}, errors.New("local launch: launcher is closed")
	}
	if prev, ok := l.runs[date]; ok && (prev.State.Active() || prev.State == StateDone) {
		prev.Existing = true
		return prev, nil
	}
	running, limit := 0, l.MaxRunning
	if limit <= 0 {
		limit = DefaultMaxRunning
	}
	for _, r := range l.runs {
		if r.State.Active() {
			running++
		}
	}
	if running >= limit {
		return Run{}, fmt.Errorf("local launch %s: %w (%d running)", date, errBusy, running)
	}
	l.seq++
	now := l.now().UTC()
	run := Run{
		Date:      date,
		JobID:     fmt.Sprintf("local-%s-%d", JobName(date), l.seq),
		JobName:   JobName(date),
		State:     StateRunning,
		Engine:    "local",
		CreatedAt: now,
		UpdatedAt: now,
	}
	l.runs[date] = run
	l.wg.Add(1)
	go l.execute(run)
	return run, nil
}

func (l *LocalLauncher) execute(run Run) {
	defer l.wg.Done()
	result, err := l.safeRun(run.Date)

	l.mu.Lock()
	defer l.mu.Unlock()
	run.UpdatedAt = l.now().UTC()
	switch {
	case err == nil:
		run.State, run.Result = StateDone, result
	case l.ctx.Err() != nil:
		run.State, run.Error = StateCancelled, err.Error()
	default:
		run.State, run.Error = StateFailed, err.Error()
		l.log.Error("local nightly run failed", "date", run.Date, "job_id", run.JobID, "error", err)
	}
	if cur, ok := l.runs[run.Date]; ok && cur.JobID == run.JobID {
		l.runs[run.Date] = run
	}
}

func (l *LocalLauncher) safeRun(date string) (result string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("nightly run panicked: %v", p)
		}
	}()
	return l.run(l.ctx, date)
}

// Lookup returns the latest run for date.
func (l *LocalLauncher) Lookup(_ context.Context, date string) (Run, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.runs[date]
	if !ok {
		return Run{}, ErrNotFound
	}
	return r, nil
}

// Latest returns the run that changed last, of any date (false: none yet),
// for the local stack's health signals.
func (l *LocalLauncher) Latest() (Run, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last Run
	for _, r := range l.runs {
		if last.JobID == "" || r.UpdatedAt.After(last.UpdatedAt) ||
			r.UpdatedAt.Equal(last.UpdatedAt) && r.CreatedAt.After(last.CreatedAt) {
			last = r
		}
	}
	return last, last.JobID != ""
}

// Wait blocks until no run is in progress or ctx is done.
func (l *LocalLauncher) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("local launcher: wait: %w", ctx.Err())
	}
}

// Close refuses new launches, cancels the runs in progress and waits for them
// to return until ctx is done.
func (l *LocalLauncher) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	return l.Wait(ctx)
}
