package stream

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/transforms/stock"
)

// keepExperiments restores --experiments after the test and starts it empty.
func keepExperiments(t *testing.T) {
	old := *jobopts.Experiments
	t.Cleanup(func() { *jobopts.Experiments = old })
	*jobopts.Experiments = ""
}

// TestBuildLeavesExperiments checks that Build changes no job option of the
// process, on Prism or Dataflow: the experiments a local job needs are
// set by whoever runs it (RunPrism, UsePrismExperiments).
func TestBuildLeavesExperiments(t *testing.T) {
	keepExperiments(t)
	for _, runner := range []string{"dataflow", "prism"} {
		_, s := beam.NewPipelineWithRoot()
		Build(s, Config{Runner: runner, Project: "inventory-prod", Subscription: DefaultSubscription,
			AlertEncoding: event.EncodingJSON, Warehouse: "bq://inventory-prod.inventory"})
		if *jobopts.Experiments != "" {
			t.Errorf("%s: Build set --experiments to %q", runner, *jobopts.Experiments)
		}
	}
	if !slices.Contains(prismExperiments(), stock.PrismNoSplitExperiment) {
		t.Errorf("PrismExperiments() = %v, want %s there", prismExperiments(), stock.PrismNoSplitExperiment)
	}
}

// TestRunPrismSetsExperiments runs a stream job (a CSV replay) with
// RunPrism and checks, in the options Prism received for it, that the job
// runs with Prism's dynamic splitting off (stock.PrismNoSplitExperiment),
// without which Prism loses stock updates (stock's
// TestStockSurvivesSlowBundles).
func TestRunPrismSetsExperiments(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	keepExperiments(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := map[string]bool{}
	if *jobopts.Endpoint != "" {
		for _, ji := range prismJobs(ctx, t) {
			before[ji.GetJobId()] = true
		}
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, Config{Runner: "prism", Input: sampleCSV, Thresholds: sampleTh, Snapshot: sampleSnapshot,
		AlertEncoding: event.EncodingJSON, Warehouse: t.TempDir()})
	if _, err := RunPrism(ctx, p); err != nil {
		t.Fatalf("run: %v", err)
	}
	var jobs []*jobpb.JobInfo
	for _, ji := range prismJobs(ctx, t) {
		if !before[ji.GetJobId()] {
			jobs = append(jobs, ji)
		}
	}
	if len(jobs) != 1 {
		t.Fatalf("Prism has %d new jobs, want 1", len(jobs))
	}
	var exps []string
	for _, v := range jobs[0].GetPipelineOptions().GetFields()["beam:option:experiments:v1"].GetListValue().GetValues() {
		exps = append(exps, v.GetStringValue())
	}
	if !slices.Contains(exps, stock.PrismNoSplitExperiment) {
		t.Errorf("the job ran with experiments %v, want %s there", exps, stock.PrismNoSplitExperiment)
	}
}

// prismJobs lists the jobs of the Prism at --endpoint.
func prismJobs(ctx context.Context, t *testing.T) []*jobpb.JobInfo {
	t.Helper()
	conn, err := grpc.NewClient(*jobopts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial prism: %v", err)
	}
	defer conn.Close()
	resp, err := jobpb.NewJobServiceClient(conn).GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		t.Fatalf("prism GetJobs: %v", err)
	}
	return resp.GetJobInfo()
}
