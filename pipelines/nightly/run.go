package nightly

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// RunResult is what a finished run did.
type RunResult struct {
	RunID     string
	Date      string
	OutputURI string // <Output>/<Date>
	Keys      int64
	Events    int64  // adjustments applied on the day
	Read      int64  // adjustment rows read
	Invalid   int64  // rows that failed validation (skipped, logged)
	Mismatch  int64  // keys whose closing differs from the streaming stock
	Opening   string // where the opening stock came from (Preflight)
	Duration  time.Duration
}

// Run runs the job for cfg in this process on Prism and waits for it:
// report_runs gets a RUNNING row, then the job's SUCCEEDED row, or FAILED
// with the error. Preflight comes first: a run it refuses is recorded FAILED
// with its reason, and nothing else is written.
// beam.Init is called if the caller has not.
func Run(ctx context.Context, cfg Config) (RunResult, error) {
	cfg = cfg.withDefaults()
	if cfg.Runner == "" {
		cfg.Runner = "prism"
	}
	res := RunResult{RunID: cfg.RunID, Date: cfg.Date.String(), OutputURI: cfg.reportDir()}
	plan, err := Preflight(ctx, cfg)
	if err != nil {
		// Recorded as FAILED, unless the warehouse itself is not there.
		if _, serr := os.Stat(cfg.Warehouse); serr == nil || warehouse.IsBigQuery(cfg.Warehouse) {
			if rerr := recordRun(context.WithoutCancel(ctx), cfg, warehouse.RunFailed, err); rerr != nil {
				return res, fmt.Errorf("%w (and recording the failure: %v)", err, rerr)
			}
		}
		return res, err
	}
	res.Opening = plan.Opening
	if !beam.Initialized() {
		beam.Init()
	}
	if err := recordRun(ctx, cfg, warehouse.RunRunning, nil); err != nil {
		return res, err
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, cfg)
	pr, err := prism.Execute(ctx, p)
	res.Duration = time.Since(cfg.StartedAt)
	if err != nil {
		err = fmt.Errorf("nightly: run %s for %s: %w", cfg.RunID, cfg.Date, err)
		if rerr := recordRun(context.WithoutCancel(ctx), cfg, warehouse.RunFailed, err); rerr != nil {
			return res, fmt.Errorf("%w (and recording the failure: %v)", err, rerr)
		}
		return res, err
	}
	if pr != nil {
		c := counters(pr.Metrics())
		res.Keys, res.Events, res.Mismatch = c["keys"], c["events"], c["mismatches"]
		res.Read, res.Invalid = c["rows_read"], c["rows_invalid"]
	}
	return res, nil
}

// recordRun replaces the date's report_runs row with one of status.
func recordRun(ctx context.Context, cfg Config, status string, runErr error) error {
	row := warehouse.ReportRunRow{RunID: cfg.RunID, ReportDate: cfg.Date.In(time.UTC), Status: status,
		StartedAt: cfg.StartedAt.UTC(), OutputURI: cfg.reportDir(), Runner: cfg.Runner, JobID: cfg.JobID}
	if status != warehouse.RunRunning {
		fin := time.Now().UTC()
		row.FinishedAt = &fin
	}
	if runErr != nil {
		row.Error = runErr.Error()
	}
	if err := warehouse.ReplaceDate(ctx, cfg.Warehouse, cfg.Date, []warehouse.ReportRunRow{row}); err != nil {
		return fmt.Errorf("nightly: record run %s %s: %w", cfg.RunID, status, err)
	}
	return nil
}

// counters sums the job's counters in the "nightly" namespace by name.
func counters(m metrics.Results) map[string]int64 {
	out := map[string]int64{}
	for _, c := range m.Query(func(r metrics.SingleResult) bool { return r.Namespace() == "nightly" }).Counters() {
		out[c.Name()] += c.Result()
	}
	return out
}

// job is a run started in the background by Start.
type job struct {
	RunID string
	done  chan struct{}
	res   RunResult
	err   error
}

// start runs the job for cfg in the background on Prism in this process
// (see Run) and returns at once. Cancelling ctx cancels the run.
func start(ctx context.Context, cfg Config) *job {
	cfg = cfg.withDefaults()
	j := &job{RunID: cfg.RunID, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		j.res, j.err = Run(ctx, cfg)
	}()
	return j
}

// Done is closed when the run has finished.
func (j *job) Done() <-chan struct{} { return j.done }

// wait waits for the run and returns its result.
func (j *job) wait() (RunResult, error) {
	<-j.done
	return j.res, j.err
}
