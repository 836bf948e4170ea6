package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.yaml.in/yaml/v3"
	df "google.golang.org/api/dataflow/v1b3"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
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

// launch runs the built binary name with args (the command line the
// template launcher derives from the deploy files) from a directory outside
// the repository (as the launcher does), against the fakes; the only flag
// it adds is --dataflow_endpoint, the fake's address. It checks what every
// launch must leave: one jobs.create with the token the credentials got,
// the worker binary staged byte for byte as the binary and named by the
// job's package, the pipeline model staged where the job says, the job's
// name and service account as the args give them.
func launch(ctx context.Context, c *check, name string, args []string, running []*df.Job) (*launched, error) {
	jobName, _ := rehearse.ArgValue(args, "job_name")
	account, _ := rehearse.ArgValue(args, "service_account_email")
	staging, _ := rehearse.ArgValue(args, "staging_location")
	stagingBkt, _, ok := gsPath(staging + "/")
	if jobName == "" || account == "" || !ok {
		return nil, fmt.Errorf("%s: the deploy files give no job name, service account or gs:// staging location: %v", name, args)
	}
	cl, err := startLaunchCloud(c, stagingBkt, running)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	l, err := runLaunch(ctx, c, cl, name, args)
	if err != nil {
		return nil, err
	}
	job := l.job
	if job.Name != jobName {
		return nil, fmt.Errorf("job name %q, want %q", job.Name, jobName)
	}
	env := job.Environment
	if env == nil || env.ServiceAccountEmail != account {
		return nil, fmt.Errorf("job environment's service account %q, want %s", envSA(env), account)
	}
	if err := l.checkNetwork(args); err != nil {
		return nil, err
	}
	if err := l.checkWorker(cl, c.bins[name], staging, stagingBkt); err != nil {
		return nil, err
	}
	if err := l.readModel(cl); err != nil {
		return nil, err
	}
	l.detail = append(l.detail, fmt.Sprintf("service account %s", account))
	return l, nil
}

// startLaunchCloud starts the fake Google APIs for one launch, with the
// jobs already running and the config bucket's reference data.
func startLaunchCloud(c *check, stagingBkt string, running []*df.Job) (*cloud, error) {
	cl, err := startCloud(c.tmp, stagingBkt)
	if err != nil {
		return nil, err
	}
	cl.running = running
	cl.gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: project + "-config"})
	for _, f := range []string{"inventory_state.json", "thresholds.csv"} {
		b, err := os.ReadFile(filepath.Join(c.root, "testdata", f))
		if err != nil {
			cl.close()
			return nil, err
		}
		cl.gcs.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: project + "-config", Name: f}, Content: b})
	}
	return cl, nil
}

// runLaunch runs the binary of name with the deploy files' args against
// cl, and checks that it made one authenticated jobs.create and nothing
// the fake does not serve.
func runLaunch(ctx context.Context, c *check, cl *cloud, name string, args []string) (*launched, error) {
	wd := filepath.Join(c.tmp, "launch-"+name) // not in the repository: no source to rebuild from
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return nil, err
	}
	all := append(slices.Clone(args), "--dataflow_endpoint="+cl.endpoint())
	out, err := c.run(ctx, wd, cl.env(), c.bins[name], all...)
	created, unexpected, unauthed, calls, tokens := cl.takeJobs()
	bqCalls := cl.takeBigQuery()
	if err != nil {
		if len(bqCalls) > 0 && len(created) == 0 {
			return nil, fmt.Errorf("%s refused before jobs.create, in the template launcher, after %d BigQuery calls (%s; the rehearsal's BigQuery is a new warehouse, the first night: counts are 0): %s",
				name, len(bqCalls), strings.Join(bqCalls, ", "), lastLines(out, 3))
		}
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
	return &launched{job: created[0], out: out}, nil
}

// checkNetwork checks the network the deploy files give, and no public IPs
// if they say so.
func (l *launched) checkNetwork(args []string) error {
	env := l.job.Environment
	if len(env.WorkerPools) != 1 {
		return nil
	}
	wp := env.WorkerPools[0]
	if v, ok := rehearse.ArgValue(args, "subnetwork"); ok && wp.Subnetwork != v {
		return fmt.Errorf("job's subnetwork %q, the deploy files give %q", wp.Subnetwork, v)
	}
	if v, _ := rehearse.ArgValue(args, "no_use_public_ips"); v == "true" && wp.IpConfiguration != "WORKER_IP_PRIVATE" {
		return fmt.Errorf("job's IP configuration %q: the deploy files ask for workers without public IPs", wp.IpConfiguration)
	}
	if wp.Subnetwork != "" {
		l.detail = append(l.detail, fmt.Sprintf("subnetwork %s, %s", wp.Subnetwork, wp.IpConfiguration))
	}
	return nil
}

// checkWorker checks that the worker is the launched binary bin itself,
// staged to the staging bucket.
func (l *launched) checkWorker(cl *cloud, bin, staging, stagingBkt string) error {
	env := l.job.Environment
	want, err := sha256File(bin)
	if err != nil {
		return err
	}
	if len(env.WorkerPools) != 1 || len(env.WorkerPools[0].Packages) == 0 {
		return fmt.Errorf("job has no worker package: %+v", env.WorkerPools)
	}
	pkg := env.WorkerPools[0].Packages[0]
	bucket, object, ok := gsPath(pkg.Location)
	if pkg.Name != "worker" || !ok || bucket != stagingBkt || !strings.HasPrefix(object, strings.TrimPrefix(strings.TrimPrefix(staging, "gs://"+stagingBkt), "/")) {
		return fmt.Errorf("worker package %s at %s, want \"worker\" in %s", pkg.Name, pkg.Location, staging)
	}
	staged, err := cl.gcs.GetObject(bucket, object)
	if err != nil {
		return fmt.Errorf("worker %s is not in the staging bucket: %w", pkg.Location, err)
	}
	if got := sha256Hex(staged.Content); got != want || pkg.Sha256 != want {
		return fmt.Errorf("staged worker sha256 %s, job's package says %s, launched binary %s: Beam staged something else", got, pkg.Sha256, want)
	}
	l.detail = append(l.detail, fmt.Sprintf("worker = launched binary (%d MB) at %s", len(staged.Content)>>20, pkg.Location))
	return nil
}

// readModel reads the staged pipeline model the job names, and checks that
// the job's options and environment agree on the experiments.
func (l *launched) readModel(cl *cloud) error {
	env := l.job.Environment
	var opts struct {
		Options struct {
			PipelineURL string   `json:"pipelineUrl"`
			Experiments []string `json:"experiments"`
		} `json:"options"`
	}
	if err := json.Unmarshal(env.SdkPipelineOptions, &opts); err != nil {
		return fmt.Errorf("job's sdkPipelineOptions: %w", err)
	}
	mb, mo, ok := gsPath(opts.Options.PipelineURL)
	if !ok {
		return fmt.Errorf("job's pipelineUrl %q is not gs://", opts.Options.PipelineURL)
	}
	m, err := cl.gcs.GetObject(mb, mo)
	if err != nil {
		return fmt.Errorf("model %s is not staged: %w", opts.Options.PipelineURL, err)
	}
	l.model = &pipepb.Pipeline{}
	if err := proto.Unmarshal(m.Content, l.model); err != nil {
		return fmt.Errorf("staged model: %w", err)
	}
	if !slices.Equal(opts.Options.Experiments, env.Experiments) {
		return fmt.Errorf("experiments differ: options %v, environment %v", opts.Options.Experiments, env.Experiments)
	}
	return nil
}

// streamJob is the job name the runbook launches and updates the stream as.
const streamJob = "inventory-stream"

func streamStep(ctx context.Context, c *check) (string, error) {
	g, err := rehearse.ReadStreamFlags(c.root, streamFlagVars)
	if err != nil {
		return "", err
	}
	if err := rehearse.CheckTemplateParameters(c.root, "stream", rehearse.StringParams(g)); err != nil {
		return "", fmt.Errorf("stream-flags.yaml: %w", err)
	}
	args, err := rehearse.LauncherArgs(streamJob, g)
	if err != nil {
		return "", fmt.Errorf("stream-flags.yaml: %w", err)
	}
	l, err := launch(ctx, c, "stream", args, nil)
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
	reads := 1 // the adjustments
	if _, ok := rehearse.ArgValue(args, "threshold_subscription"); ok {
		reads++ // and the live threshold changes
	}
	if len(urns[pubsubReadURN]) != reads {
		return "", fmt.Errorf("graph has %d native Pub/Sub reads (%s), want %d", len(urns[pubsubReadURN]), pubsubReadURN, reads)
	}
	if len(urns[pubsubWriteURN]) != 2 {
		return "", fmt.Errorf("graph has %d native Pub/Sub writes (%s), want 2 (alerts, dead letters)", len(urns[pubsubWriteURN]), pubsubWriteURN)
	}
	stock := statefulStages(l.model, "stock")
	if len(stock) == 0 {
		return "", fmt.Errorf("graph has no stateful stage named for stock")
	}

	update, err := streamUpdate(ctx, c, l.model)
	if err != nil {
		return "", err
	}
	return strings.Join(append([]string{"deploy/stream-flags.yaml as the launcher passes it: JOB_TYPE_STREAMING, Streaming Engine",
		fmt.Sprintf("native Pub/Sub reads %s and 2 writes", strings.Join(urns[pubsubReadURN], ", ")),
		fmt.Sprintf("stateful stock stage %s", strings.Join(stock, ", "))}, append(l.detail, update)...), "; "), nil
}

// streamUpdate is a later release: the runbook's update, the same flags
// file with deploy/stream-renames.yaml and --update. Beam finds the running
// job by name and replaces it; the renamed steps keep their state through
// the mapping, which must lead every step of the running release's graph
// (deploy/stream-steps.txt) to a step of this one (model).
func streamUpdate(ctx context.Context, c *check, model *pipepb.Pipeline) (string, error) {
	renames, err := readRenames(c.root)
	if err != nil {
		return "", err
	}
	prevSteps, err := readSteps(c.root)
	if err != nil {
		return "", err
	}
	steps := stepNames(model)
	if err := checkRenames(prevSteps, steps, renames); err != nil {
		return "", fmt.Errorf("deploy/stream-renames.yaml against deploy/stream-steps.txt: %w (this graph's steps:\n%s)", err, strings.Join(steps, "\n"))
	}
	prev := &df.Job{Id: "2026-11-20_03_00_00-previous", Name: streamJob, CurrentState: "JOB_STATE_RUNNING"}
	// The runbook's one flags file: stream-flags.yaml rendered, with
	// stream-renames.yaml appended.
	g, err := rehearse.ReadStreamFlags(c.root, streamFlagVars, "stream-renames.yaml")
	if err != nil {
		return "", fmt.Errorf("update: the flags file with deploy/stream-renames.yaml appended: %w", err)
	}
	g["--update"] = nil
	uargs, err := rehearse.LauncherArgs(streamJob, g)
	if err != nil {
		return "", err
	}
	u, err := launch(ctx, c, "stream", uargs, []*df.Job{prev})
	if err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	if u.job.ReplaceJobId != prev.Id || !maps.Equal(u.job.TransformNameMapping, renames) {
		return "", fmt.Errorf("update: jobs.create replaces %q with mapping %v, want %s and deploy/stream-renames.yaml's %v", u.job.ReplaceJobId, u.job.TransformNameMapping, prev.Id, renames)
	}
	return fmt.Sprintf("--update replaces the running job by name with the %d renames of deploy/stream-renames.yaml, which lead all %d steps of deploy/stream-steps.txt to this graph's %d", len(renames), len(prevSteps), len(steps)), nil
}

// readRenames reads the transform name mapping of deploy/stream-renames.yaml.
func readRenames(root string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "stream-renames.yaml"))
	if err != nil {
		return nil, err
	}
	var f map[string]map[string]string
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("stream-renames.yaml: %w", err)
	}
	for k := range f {
		if k != "--transform-name-mappings" {
			return nil, fmt.Errorf("stream-renames.yaml sets %s: it holds --transform-name-mappings only", k)
		}
	}
	return f["--transform-name-mappings"], nil
}

// readSteps reads deploy/stream-steps.txt: one step name a line, # comments.
func readSteps(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "stream-steps.txt"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, nil
}

// stepNames returns the unique names of the model's transforms, sorted.
func stepNames(p *pipepb.Pipeline) []string {
	var out []string
	for _, t := range p.GetComponents().GetTransforms() {
		out = append(out, t.GetUniqueName())
	}
	slices.Sort(out)
	return out
}

// checkRenames checks a transform name mapping against the previous
// graph's step names (prev) and the new graph's (cur): every old name is a
// step of prev, every new one a step of cur, and every step of prev, its
// longest matching old-name prefix replaced (as Dataflow maps them), is a
// step of cur.
func checkRenames(prev, cur []string, renames map[string]string) error {
	var errs []string
	for _, old := range slices.Sorted(maps.Keys(renames)) {
		if !slices.Contains(prev, old) {
			errs = append(errs, fmt.Sprintf("%s is not a step of the running release", old))
		}
		if !slices.Contains(cur, renames[old]) {
			errs = append(errs, fmt.Sprintf("%s maps to %s, which is not a step of the new graph", old, renames[old]))
		}
	}
	for _, step := range prev {
		if to := renamed(step, renames); !slices.Contains(cur, to) {
			errs = append(errs, fmt.Sprintf("step %s (as %s) is not in the new graph: map it", step, to))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// renamed returns step with the longest old-name prefix in renames replaced.
func renamed(step string, renames map[string]string) string {
	best := ""
	for old := range renames {
		if strings.HasPrefix(step, old) && len(old) > len(best) {
			best = old
		}
	}
	if best == "" {
		return step
	}
	return renames[best] + strings.TrimPrefix(step, best)
}

// nightlyStep launches the nightly binary with what the trigger, configured
// as deploy/cloudbuild.yaml deploys it, asks Dataflow to launch.
func nightlyStep(ctx context.Context, c *check) (string, error) {
	req, _, err := triggerLaunch(ctx, c)
	if err != nil {
		return "", err
	}
	args, err := rehearse.FlexLaunchArgs(req)
	if err != nil {
		return "", err
	}
	l, err := launch(ctx, c, "nightly", args, nil)
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
	return strings.Join(append([]string{"the trigger's launch request as the launcher passes it: JOB_TYPE_BATCH"}, l.detail...), "; "), nil
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
