// Package rehearse runs the trigger's production calls against the in-process
// fakes of the Dataflow and Cloud Scheduler APIs (internal/testkit/gcpfake),
// over their real gRPC services, outside a test: make deploy-check uses it to
// rehearse the nightly launch and the Scheduler job offline.
package rehearse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"

	"github.com/inventory-events/inventory/internal/testkit/gcpfake"
	"github.com/inventory-events/inventory/reports/trigger"
)

// tb runs the fakes outside a test: cleanups on close, Fatalf panics with
// an error that run turns into its result.
type tb struct{ cleanups []func() }

type fatal struct{ err error }

func (*tb) Helper()                        {}
func (t *tb) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (*tb) Fatalf(format string, a ...any) { panic(fatal{fmt.Errorf(format, a...)}) }
func (t *tb) close() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

func run(f func(t *tb) error) (err error) {
	t := &tb{}
	defer t.close()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	return f(t)
}

// Launch serves the trigger's handler with a DataflowLauncher for cfg wired
// to a fake Dataflow API, POSTs /v1/nightly?date=date twice (as Scheduler's
// retry would), and returns the one LaunchFlexTemplate request the fake
// received. The second POST must answer 200 with the same job (idempotent).
func Launch(ctx context.Context, cfg trigger.DataflowConfig, date string) (*dataflowpb.LaunchFlexTemplateRequest, error) {
	var req *dataflowpb.LaunchFlexTemplateRequest
	err := run(func(t *tb) error {
		fake, opts := gcpfake.StartDataflow(t)
		l, err := trigger.NewDataflowLauncher(ctx, cfg, opts...)
		if err != nil {
			return err
		}
		defer l.Close()
		srv := httptest.NewServer(trigger.NewServer(trigger.Config{}, l, nil))
		defer srv.Close()
		var jobs []string
		for i, want := range []int{http.StatusAccepted, http.StatusOK} {
			resp, err := http.Post(srv.URL+"/v1/nightly?date="+url.QueryEscape(date), "application/json", nil)
			if err != nil {
				return err
			}
			var r trigger.Run
			derr := json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode != want || derr != nil {
				return fmt.Errorf("POST /v1/nightly #%d: %s (%v), want %d", i+1, resp.Status, derr, want)
			}
			jobs = append(jobs, r.JobID)
		}
		if jobs[0] == "" || jobs[0] != jobs[1] {
			return fmt.Errorf("the two POSTs gave jobs %q: want one job", jobs)
		}
		launches := fake.Launches()
		if len(launches) != 1 {
			return fmt.Errorf("the fake Dataflow got %d launches, want 1", len(launches))
		}
		req = launches[0]
		return nil
	})
	return req, err
}

// Schedule calls trigger.EnsureSchedulerJob for cfg twice against a fake
// Cloud Scheduler: the first must create the job, the second change nothing.
// It returns the stored job.
func Schedule(ctx context.Context, cfg trigger.SchedulerConfig) (*schedulerpb.Job, error) {
	var job *schedulerpb.Job
	err := run(func(t *tb) error {
		fake, opts := gcpfake.StartScheduler(t)
		for i, want := range []bool{true, false} {
			changed, err := trigger.EnsureSchedulerJob(ctx, cfg, opts...)
			if err != nil {
				return err
			}
			if changed != want {
				return fmt.Errorf("EnsureSchedulerJob #%d changed=%v, want %v", i+1, changed, want)
			}
		}
		if len(fake.Creates()) != 1 || len(fake.Updates()) != 0 {
			return fmt.Errorf("fake Scheduler got %d creates and %d updates, want 1 and 0", len(fake.Creates()), len(fake.Updates()))
		}
		want, err := cfg.DesiredJob()
		if err != nil {
			return err
		}
		job = fake.Job(want.GetName())
		if job == nil {
			return errors.New("the fake Scheduler has no job " + want.GetName())
		}
		return nil
	})
	return job, err
}
