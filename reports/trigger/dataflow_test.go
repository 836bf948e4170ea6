package trigger_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"

	"github.com/inventory-events/inventory/internal/testkit/gcpfake"
	"github.com/inventory-events/inventory/reports/trigger"
)

const (
	project = "inventory-prod"
	region  = "europe-west1"
)

func newDataflowLauncher(t *testing.T) (*trigger.DataflowLauncher, *gcpfake.Dataflow) {
	t.Helper()
	fake, opts := gcpfake.StartDataflow(t)
	l, err := trigger.NewDataflowLauncher(context.Background(), trigger.DataflowConfig{
		Project:             project,
		Region:              region,
		TemplatePath:        "gs://inventory-prod-dataflow/templates/nightly.json",
		Parameters:          map[string]string{"output": "gs://inventory-prod-reports/reports", "dataset": "inventory"},
		ServiceAccountEmail: "dataflow-worker@inventory-prod.iam.gserviceaccount.com",
		TempLocation:        "gs://inventory-prod-dataflow/tmp",
		MaxWorkers:          4,
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, fake
}

func TestDataflowLaunchRequest(t *testing.T) {
	l, fake := newDataflowLauncher(t)
	run, err := l.Launch(context.Background(), "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	if run.JobID == "" || run.JobName != "nightly-summary-2026-11-24" || run.State != trigger.StatePending || run.Existing || run.Engine != "dataflow" {
		t.Fatalf("run = %+v", run)
	}
	launches := fake.Launches()
	if len(launches) != 1 {
		t.Fatalf("%d launches, want 1", len(launches))
	}
	req := launches[0]
	p := req.GetLaunchParameter()
	env := p.GetEnvironment()
	checks := map[string][2]any{
		"project_id":              {req.GetProjectId(), project},
		"location":                {req.GetLocation(), region},
		"job_name":                {p.GetJobName(), "nightly-summary-2026-11-24"},
		"container_spec_gcs_path": {p.GetContainerSpecGcsPath(), "gs://inventory-prod-dataflow/templates/nightly.json"},
		"service_account_email":   {env.GetServiceAccountEmail(), "dataflow-worker@inventory-prod.iam.gserviceaccount.com"},
		"temp_location":           {env.GetTempLocation(), "gs://inventory-prod-dataflow/tmp"},
		"max_workers":             {env.GetMaxWorkers(), int32(4)},
		"validate_only":           {req.GetValidateOnly(), false},
	}
	for field, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", field, c[0], c[1])
		}
	}
	wantParams := map[string]string{"date": "2026-11-24", "output": "gs://inventory-prod-reports/reports", "dataset": "inventory"}
	if !maps.Equal(p.GetParameters(), wantParams) {
		t.Errorf("parameters = %v, want %v", p.GetParameters(), wantParams)
	}
	if env.GetAdditionalUserLabels()["report-date"] != "2026-11-24" {
		t.Errorf("labels = %v, want report-date", env.GetAdditionalUserLabels())
	}
	lists := fake.Lists()
	if len(lists) == 0 || lists[0].GetName() != "nightly-summary-2026-11-24" || lists[0].GetFilter() != dataflowpb.ListJobsRequest_ALL || lists[0].GetLocation() != region {
		t.Errorf("first ListJobs = %v, want name, ALL and location", lists)
	}
}

func TestDataflowLaunchIdempotent(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		prior        []dataflowpb.JobState // jobs named for the date, oldest first
		staleLists   int
		wantLaunches int
		wantExisting bool
		wantState    trigger.State
	}{
		{name: "nothing yet", wantLaunches: 1, wantState: trigger.StatePending},
		{name: "running", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_RUNNING}, wantExisting: true, wantState: trigger.StateRunning},
		{name: "queued", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_QUEUED}, wantExisting: true, wantState: trigger.StatePending},
		{name: "done", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_DONE}, wantExisting: true, wantState: trigger.StateDone},
		{name: "failed is relaunched", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_FAILED}, wantLaunches: 1, wantState: trigger.StatePending},
		{name: "cancelled is relaunched", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_CANCELLED}, wantLaunches: 1, wantState: trigger.StatePending},
		{name: "failed then done: the newest counts", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_FAILED, dataflowpb.JobState_JOB_STATE_DONE, dataflowpb.JobState_JOB_STATE_FAILED, dataflowpb.JobState_JOB_STATE_RUNNING}, wantExisting: true, wantState: trigger.StateRunning},
		{name: "race: ALREADY_EXISTS returns the winner", prior: []dataflowpb.JobState{dataflowpb.JobState_JOB_STATE_RUNNING}, staleLists: 1, wantLaunches: 1, wantExisting: true, wantState: trigger.StateRunning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, fake := newDataflowLauncher(t)
			fake.AddJob(project, region, "nightly-summary-2026-11-23", dataflowpb.JobState_JOB_STATE_RUNNING) // another date
			fake.AddJob(project, "us-central1", "nightly-summary-2026-11-24", dataflowpb.JobState_JOB_STATE_RUNNING)
			var lastID string
			for _, s := range tc.prior {
				lastID = fake.AddJob(project, region, "nightly-summary-2026-11-24", s)
			}
			fake.StaleLists(tc.staleLists)

			run, err := l.Launch(ctx, "2026-11-24")
			if err != nil {
				t.Fatal(err)
			}
			if got := len(fake.Launches()); got != tc.wantLaunches {
				t.Errorf("%d LaunchFlexTemplate calls, want %d", got, tc.wantLaunches)
			}
			if run.Existing != tc.wantExisting || run.State != tc.wantState {
				t.Errorf("run = %+v, want existing=%v state=%s", run, tc.wantExisting, tc.wantState)
			}
			if tc.wantExisting && run.JobID != lastID {
				t.Errorf("job id = %s, want the newest job %s", run.JobID, lastID)
			}
			// A retry never launches a second job.
			again, err := l.Launch(ctx, "2026-11-24")
			if err != nil {
				t.Fatal(err)
			}
			if !again.Existing || again.JobID != run.JobID || len(fake.Launches()) != tc.wantLaunches {
				t.Errorf("retry = %+v after %d launches, want existing %s", again, len(fake.Launches()), run.JobID)
			}
		})
	}
}

func TestDataflowLookup(t *testing.T) {
	l, fake := newDataflowLauncher(t)
	ctx := context.Background()
	if _, err := l.Lookup(ctx, "2026-11-24"); !errors.Is(err, trigger.ErrNotFound) {
		t.Fatalf("lookup before launch: %v, want ErrNotFound", err)
	}
	run, err := l.Launch(ctx, "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	fake.SetState(run.JobID, dataflowpb.JobState_JOB_STATE_DONE)
	got, err := l.Lookup(ctx, "2026-11-24")
	if err != nil || got.State != trigger.StateDone || got.JobID != run.JobID {
		t.Fatalf("lookup = %+v %v, want DONE %s", got, err, run.JobID)
	}
	if _, err := l.Launch(ctx, "2026-11-24T00"); err == nil {
		t.Fatal("launch with a bad date succeeded")
	}
}

func TestDataflowThroughServer(t *testing.T) {
	l, fake := newDataflowLauncher(t)
	h := trigger.NewServer(trigger.Config{}, l, nil)
	first, _ := doReq(h, "POST", "/v1/nightly?date=2026-11-24")
	second, _ := doReq(h, "POST", "/v1/nightly?date=2026-11-24")
	if first != http.StatusAccepted || second != http.StatusOK || len(fake.Launches()) != 1 {
		t.Fatalf("codes %d, %d with %d launches; want 202, 200 and one launch", first, second, len(fake.Launches()))
	}
	code, body := doReq(h, "GET", "/v1/nightly/2026-11-24")
	if code != http.StatusOK {
		t.Fatalf("status = %d %s", code, body)
	}
}

func doReq(h http.Handler, method, target string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Code, rec.Body.String()
}

func TestDataflowAlreadyExistsButUnlisted(t *testing.T) {
	l, fake := newDataflowLauncher(t)
	fake.AddJob(project, region, "nightly-summary-2026-11-24", dataflowpb.JobState_JOB_STATE_RUNNING)
	fake.StaleLists(2) // both the check and the re-list miss the running job
	_, err := l.Launch(context.Background(), "2026-11-24")
	if err == nil || !strings.Contains(err.Error(), "cannot be listed") || !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatalf("err = %v, want the ALREADY_EXISTS launch reported", err)
	}
}

// failingLauncher is a Launcher whose engine is down.
type failingLauncher struct{}

func (failingLauncher) Launch(context.Context, string) (trigger.Run, error) {
	return trigger.Run{}, errors.New("dataflow.LaunchFlexTemplate: Unavailable")
}

func (failingLauncher) Lookup(context.Context, string) (trigger.Run, error) {
	return trigger.Run{}, errors.New("dataflow.ListJobs: Unavailable")
}

func TestServerReportsEngineErrors(t *testing.T) {
	var logs bytes.Buffer
	h := trigger.NewServer(trigger.Config{}, failingLauncher{}, trigger.NewLogger(&logs, slog.LevelInfo))
	for _, tc := range []struct{ method, target string }{
		{"POST", "/v1/nightly?date=2026-11-24"},
		{"GET", "/v1/nightly/2026-11-24"},
	} {
		code, body := doReq(h, tc.method, tc.target)
		if code != http.StatusBadGateway || strings.Contains(body, "Unavailable") || !strings.Contains(body, "see the service's log") {
			t.Errorf("%s %s = %d %s, want 502 with a short message, not the engine's words", tc.method, tc.target, code, body)
		}
	}
	// The engine's words are in the log.
	if n := strings.Count(logs.String(), `"severity":"ERROR"`); n != 2 || strings.Count(logs.String(), "Unavailable") != 2 {
		t.Errorf("%d ERROR log lines, want 2 with the cause:\n%s", n, logs.String())
	}
}
