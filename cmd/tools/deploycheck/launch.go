package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	df "google.golang.org/api/dataflow/v1b3"
	"google.golang.org/protobuf/proto"
)

// Native Pub/Sub transforms Dataflow runs itself (Beam's pubsubio).
const (
	pubsubReadURN  = "beam:transform:pubsub_read:v1"
	pubsubWriteURN = "beam:transform:pubsub_write:v1"
)

// launched is what one launch left at the fakes.
type launched struct {
	job    *df.Job
	model  *pipepb.Pipeline
	out    string
	detail []string
}

// launch runs bin with --runner=dataflow and args from a directory outside
// the repository (as the Flex Template launcher does), against the fakes,
// and checks what every launch must leave: one jobs.create with the token
// the credentials got, the worker binary staged byte for byte as bin and
// named by the job's package, the pipeline model staged where the job
// says, the job's name and service account.
func launch(ctx context.Context, c *check, name, jobName, account string, running []*df.Job, args ...string) (*launched, error) {
	cl, err := startCloud(c.tmp)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	cl.running = running
	cl.gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: project + "-config"})
	for _, f := range []string{"inventory_state.json", "thresholds.csv"} {
		b, err := os.ReadFile(filepath.Join(c.root, "testdata", f))
		if err != nil {
			return nil, err
		}
		cl.gcs.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: project + "-config", Name: f}, Content: b})
	}
	wd := filepath.Join(c.tmp, "launch-"+name) // not in the repository: no source to rebuild from
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, err
	}
	bin := c.bins[name]
	all := append([]string{"--project=" + project, "--region=" + region,
		"--staging_location=gs://" + stagingBkt + "/staging", "--dataflow_endpoint=" + cl.endpoint(),
		"--service_account_email=" + account, "--job_name=" + jobName}, args...)
	out, err := c.run(ctx, wd, cl.env(), bin, all...)
	created, unexpected, unauthed, calls, tokens := cl.takeJobs()
	if err != nil {
		return nil, fmt.Errorf("%s --runner=dataflow: %v: %s", name, err, lastLines(out, 6))
	}
	switch {
	case len(created) != 1:
		return nil, fmt.Errorf("%s made %d jobs.create calls, want 1 (calls %v)", name, len(created), calls)
	case len(unexpected) > 0:
		return nil, fmt.Errorf("%s called what the fake Dataflow API does not serve: %v", name, unexpected)
	case tokens == 0 || len(unauthed) > 0:
		return nil, fmt.Errorf("%s: %d tokens from the key's token_uri; calls without that token: %v", name, tokens, unauthed)
	}
	l := &launched{job: created[0], out: out}
	job := l.job
	if job.Name != jobName {
		return nil, fmt.Errorf("job name %q, want %q", job.Name, jobName)
	}
	env := job.Environment
	if env == nil || env.ServiceAccountEmail != account {
		return nil, fmt.Errorf("job environment's service account %q, want %s", envSA(env), account)
	}

	// The worker: the launched binary itself, staged to the staging bucket.
	want, err := sha256File(bin)
	if err != nil {
		return nil, err
	}
	if len(env.WorkerPools) != 1 || len(env.WorkerPools[0].Packages) == 0 {
		return nil, fmt.Errorf("job has no worker package: %+v", env.WorkerPools)
	}
	pkg := env.WorkerPools[0].Packages[0]
	bucket, object, ok := gsPath(pkg.Location)
	if pkg.Name != "worker" || !ok || bucket != stagingBkt || !strings.HasPrefix(object, "staging/") {
		return nil, fmt.Errorf("worker package %s at %s, want \"worker\" in gs://%s/staging/", pkg.Name, pkg.Location, stagingBkt)
	}
	staged, err := cl.gcs.GetObject(bucket, object)
	if err != nil {
		return nil, fmt.Errorf("worker %s is not in the staging bucket: %w", pkg.Location, err)
	}
	if got := sha256Hex(staged.Content); got != want || pkg.Sha256 != want {
		return nil, fmt.Errorf("staged worker sha256 %s, job's package says %s, launched binary %s: Beam staged something else", got, pkg.Sha256, want)
	}
	l.detail = append(l.detail, fmt.Sprintf("worker = launched binary (%d MB) at %s", len(staged.Content)>>20, pkg.Location))

	// The pipeline model the job names.
	var opts struct {
		Options struct {
			PipelineURL string   `json:"pipelineUrl"`
			Experiments []string `json:"experiments"`
		} `json:"options"`
	}
	if err := json.Unmarshal(env.SdkPipelineOptions, &opts); err != nil {
		return nil, fmt.Errorf("job's sdkPipelineOptions: %w", err)
	}
	mb, mo, ok := gsPath(opts.Options.PipelineURL)
	if !ok {
		return nil, fmt.Errorf("job's pipelineUrl %q is not gs://", opts.Options.PipelineURL)
	}
	m, err := cl.gcs.GetObject(mb, mo)
	if err != nil {
		return nil, fmt.Errorf("model %s is not staged: %w", opts.Options.PipelineURL, err)
	}
	l.model = &pipepb.Pipeline{}
	if err := proto.Unmarshal(m.Content, l.model); err != nil {
		return nil, fmt.Errorf("staged model: %w", err)
	}
	if !slices.Equal(opts.Options.Experiments, env.Experiments) {
		return nil, fmt.Errorf("experiments differ: options %v, environment %v", opts.Options.Experiments, env.Experiments)
	}
	l.detail = append(l.detail, fmt.Sprintf("service account %s", account))
	return l, nil
}

func streamStep(ctx context.Context, c *check) (string, error) {
	args := []string{
		"--subscription=projects/" + project + "/subscriptions/inventory-sub",
		"--alert_topic=projects/" + project + "/topics/low-stock-alerts",
		"--dead_letter_topic=projects/" + project + "/topics/inventory-dead-letter",
		"--warehouse=bq://" + project + ".inventory",
		"--snapshot=gs://" + project + "-config/inventory_state.json",
		"--thresholds=gs://" + project + "-config/thresholds.csv"}
	// Beam's other spelling of the runner: it must launch the same way
	// (off Dataflow the job would look the alert topic up in Pub/Sub first).
	l, err := launch(ctx, c, "stream", "inventory-stream", sa("inventory-stream"), nil,
		append([]string{"--runner=DataflowRunner"}, args...)...)
	if err != nil {
		return "", err
	}
	job := l.job
	if job.Type != "JOB_TYPE_STREAMING" {
		return "", fmt.Errorf("job type %s, want JOB_TYPE_STREAMING", job.Type)
	}
	// Beam Go turns Streaming Engine on for every streaming job with these
	// experiments (the portable runner supports nothing else).
	for _, e := range []string{"enable_streaming_engine", "enable_windmill_service", "use_runner_v2"} {
		if !slices.Contains(job.Environment.Experiments, e) {
			return "", fmt.Errorf("streaming job without experiment %s (has %v)", e, job.Environment.Experiments)
		}
	}
	urns := transformsByURN(l.model)
	if len(urns[pubsubReadURN]) != 1 {
		return "", fmt.Errorf("graph has %d native Pub/Sub reads (%s), want 1", len(urns[pubsubReadURN]), pubsubReadURN)
	}
	if len(urns[pubsubWriteURN]) != 2 {
		return "", fmt.Errorf("graph has %d native Pub/Sub writes (%s), want 2 (alerts, dead letters)", len(urns[pubsubWriteURN]), pubsubWriteURN)
	}
	stock := statefulStages(l.model, "stock")
	if len(stock) == 0 {
		return "", fmt.Errorf("graph has no stateful stage named for stock")
	}

	// An update: Beam finds the running job by name and replaces it.
	prev := &df.Job{Id: "2026-11-20_03_00_00-previous", Name: "inventory-stream", CurrentState: "JOB_STATE_RUNNING"}
	mapping := `{"OldStage":"NewStage"}`
	u, err := launch(ctx, c, "stream", "inventory-stream", sa("inventory-stream"), []*df.Job{prev},
		append([]string{"--runner=dataflow", "--update", "--transform_name_mapping=" + mapping}, args...)...)
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	if u.job.ReplaceJobId != prev.Id || u.job.TransformNameMapping["OldStage"] != "NewStage" {
		return "", fmt.Errorf("update: jobs.create replaces %q with mapping %v, want %s and %s", u.job.ReplaceJobId, u.job.TransformNameMapping, prev.Id, mapping)
	}
	return strings.Join(append([]string{"--runner=DataflowRunner: JOB_TYPE_STREAMING, Streaming Engine",
		fmt.Sprintf("native Pub/Sub read %s and 2 writes", strings.Join(urns[pubsubReadURN], "")),
		fmt.Sprintf("stateful stock stage %s", strings.Join(stock, ", "))}, append(l.detail,
		"--update replaces the running job by name with --transform_name_mapping")...), "; "), nil
}

func nightlyStep(ctx context.Context, c *check) (string, error) {
	l, err := launch(ctx, c, "nightly", "nightly-summary-"+reportDate, sa("inventory-nightly"), nil,
		"--runner=dataflow", "--date="+reportDate, "--warehouse=bq://"+project+".inventory",
		"--output=gs://"+project+"-reports/reports",
		"--snapshot=gs://"+project+"-config/inventory_state.json",
		"--thresholds=gs://"+project+"-config/thresholds.csv",
		// The preflight queries BigQuery, which has no local server here
		// that runs queries: not rehearsed.
		"--preflight=false")
	if err != nil {
		return "", err
	}
	if l.job.Type != "JOB_TYPE_BATCH" {
		return "", fmt.Errorf("job type %s, want JOB_TYPE_BATCH", l.job.Type)
	}
	if slices.Contains(l.job.Environment.Experiments, "enable_streaming_engine") {
		return "", fmt.Errorf("batch job with Streaming Engine")
	}
	if n := len(transformsByURN(l.model)[pubsubReadURN]); n != 0 {
		return "", fmt.Errorf("nightly graph reads Pub/Sub (%d reads)", n)
	}
	return strings.Join(append([]string{"JOB_TYPE_BATCH"}, l.detail...), "; "), nil
}

// transformsByURN maps each URN to the unique names of the transforms with it.
func transformsByURN(p *pipepb.Pipeline) map[string][]string {
	out := map[string][]string{}
	for _, t := range p.GetComponents().GetTransforms() {
		if u := t.GetSpec().GetUrn(); u != "" {
			out[u] = append(out[u], t.GetUniqueName())
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// statefulStages returns the names of ParDos with state whose unique name
// contains word (case-insensitively).
func statefulStages(p *pipepb.Pipeline, word string) []string {
	var out []string
	for _, t := range p.GetComponents().GetTransforms() {
		if t.GetSpec().GetUrn() != "beam:transform:pardo:v1" || !strings.Contains(strings.ToLower(t.GetUniqueName()), word) {
			continue
		}
		var pd pipepb.ParDoPayload
		if proto.Unmarshal(t.GetSpec().GetPayload(), &pd) == nil && len(pd.GetStateSpecs()) > 0 {
			out = append(out, t.GetUniqueName())
		}
	}
	slices.Sort(out)
	return out
}

func envSA(e *df.Environment) string {
	if e == nil {
		return ""
	}
	return e.ServiceAccountEmail
}

func gsPath(u string) (bucket, object string, ok bool) {
	rest, ok := strings.CutPrefix(u, "gs://")
	if !ok {
		return "", "", false
	}
	bucket, object, ok = strings.Cut(rest, "/")
	return bucket, object, ok && bucket != "" && object != ""
}

func sha256File(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return sha256Hex(b), nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
