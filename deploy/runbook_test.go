package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// shellBlocks returns the ```sh blocks of a Markdown text, continuation
// lines joined, with the offset of each in the text.
func shellBlocks(doc string) (blocks []string, offsets []int) {
	re := regexp.MustCompile("(?s)```sh\n(.*?)```")
	for _, m := range re.FindAllStringSubmatchIndex(doc, -1) {
		b := doc[m[2]:m[3]]
		b = regexp.MustCompile(`\\\n\s*`).ReplaceAllString(b, "")
		blocks = append(blocks, b)
		offsets = append(offsets, m[0])
	}
	return blocks, offsets
}

// streamFlagsFile reads deploy/stream-flags.yaml: its gcloud flags and its
// placeholders.
func streamFlagsFile(t *testing.T) (flags map[string]any, placeholders []string) {
	t.Helper()
	text := read(t, "deploy/stream-flags.yaml")
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)\}`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(placeholders, m[1]) {
			placeholders = append(placeholders, m[1])
		}
	}
	slices.Sort(placeholders)
	if err := yaml.Unmarshal([]byte(text), &flags); err != nil {
		t.Fatalf("stream-flags.yaml: %v", err)
	}
	return flags, placeholders
}

// TestStreamFlags checks the stream's launch file against the stream
// template: every parameter is declared and matches its regexes once the
// placeholders are filled in, every required one is given, and the
// environment flags are ones Beam Go has a flag for.
func TestStreamFlags(t *testing.T) {
	flags, placeholders := streamFlagsFile(t)
	if !slices.Equal(placeholders, []string{"PROJECT", "REGION", "SUBNETWORK"}) {
		t.Errorf("placeholders %v, want PROJECT, REGION, SUBNETWORK (the runbook's envsubst list)", placeholders)
	}
	fill := strings.NewReplacer("${PROJECT}", "my-project", "${REGION}", "europe-west1", "${SUBNETWORK}", "regions/europe-west1/subnetworks/default")
	// gcloud flags whose Beam Go flag the launcher can pass (see
	// cmd/tools/deploycheck, launcherFlags); --enable-streaming-engine has
	// none.
	known := []string{"--template-file-gcs-location", "--project", "--region", "--service-account-email",
		"--staging-location", "--temp-location", "--max-workers", "--num-workers", "--worker-machine-type",
		"--network", "--subnetwork", "--disable-public-ips", "--parameters"}
	for k := range flags {
		if !slices.Contains(known, k) {
			t.Errorf("stream-flags.yaml sets %s, which no Beam Go flag takes", k)
		}
	}
	if v := fill.Replace(toString(flags["--template-file-gcs-location"])); v != "gs://my-project-dataflow-templates/stream.json" {
		t.Errorf("template %s, want the stream template cloudbuild.yaml writes", v)
	}
	if sa := toString(flags["--service-account-email"]); !strings.HasPrefix(sa, "inventory-stream@") {
		t.Errorf("service account %s, want inventory-stream", sa)
	}
	iamBuckets := scriptBuckets(read(t, "deploy/iam.sh"))
	for _, k := range []string{"--staging-location", "--temp-location"} {
		want := "gs://" + strings.Replace(iamBuckets["STREAM_BUCKET"], "PROJECT", "${PROJECT}", 1) + "/"
		if v := toString(flags[k]); !strings.HasPrefix(v, want) {
			t.Errorf("%s %s, want the stream's own bucket %s", k, v, want)
		}
	}
	params, ok := flags["--parameters"].(map[string]any)
	if !ok {
		t.Fatalf("--parameters is %T, want a map", flags["--parameters"])
	}
	md := readMetadata(t, "stream")
	declared := map[string]bool{}
	for _, p := range md.Parameters {
		declared[p.Name] = true
		v, given := params[p.Name]
		if !given {
			if !*p.IsOptional {
				t.Errorf("stream-flags.yaml lacks the required parameter %s", p.Name)
			}
			continue
		}
		for _, re := range p.Regexes {
			if val := fill.Replace(toString(v)); !regexp.MustCompile(re).MatchString(val) {
				t.Errorf("parameter %s=%s does not match %q", p.Name, val, re)
			}
		}
	}
	for k := range params {
		if !declared[k] {
			t.Errorf("stream-flags.yaml passes %s, which the stream template does not declare", k)
		}
	}
	// What the issue found missing: live thresholds and the network.
	for _, k := range []string{"threshold_subscription", "subnetwork", "no_use_public_ips"} {
		if _, ok := params[k]; !ok {
			t.Errorf("stream-flags.yaml does not pass %s", k)
		}
	}
	if _, ok := flags["--disable-public-ips"]; !ok || toString(params["subnetwork"]) != toString(flags["--subnetwork"]) {
		t.Error("the launcher VM (--subnetwork, --disable-public-ips) and the workers (subnetwork, no_use_public_ips) must share the network settings")
	}
}

func toString(v any) string {
	if v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRunbook reads deploy/README.md against the deploy files: every stream
// launch is the flags file and nothing else, the file is rendered with its
// own placeholders, the first deploy and a release run in an order that
// works (setup before the build and before the stream's update; a release
// updates in place), and the alert policies it applies are the files in
// deploy/monitoring.
func TestRunbook(t *testing.T) {
	doc := read(t, "deploy/README.md")
	_, placeholders := streamFlagsFile(t)
	blocks, offsets := shellBlocks(doc)
	release := strings.Index(doc, "## A later release")
	if release < 0 {
		t.Fatal("the runbook has no \"## A later release\" section")
	}
	releaseEnd := release + strings.Index(doc[release+1:], "\n## ") + 1

	var wantEnvsubst []string
	for _, p := range placeholders {
		wantEnvsubst = append(wantEnvsubst, "${"+p+"}")
	}
	envsubst := "envsubst '" + strings.Join(wantEnvsubst, " ") + "' < deploy/stream-flags.yaml > stream-flags.$PROJECT.yaml"
	launches, updates := 0, 0
	var setupAt, buildAt, updateAt []int // offsets in the release section
	firstLaunch, firstSetup := -1, -1
	for i, b := range blocks {
		inRelease := offsets[i] > release && offsets[i] < releaseEnd
		for _, line := range strings.Split(b, "\n") {
			line = strings.TrimSpace(line)
			switch {
			case strings.Contains(line, "gcloud dataflow flex-template run"):
				launches++
				if !strings.Contains(line, "--flags-file=stream-flags.$PROJECT.yaml") {
					t.Errorf("runbook launches the stream without the flags file: %s", line)
				}
				for _, f := range []string{"--parameters", "--enable-streaming-engine", "--service-account-email", "--staging-location", "--subnetwork"} {
					if strings.Contains(line, f) {
						t.Errorf("runbook gives %s on the command line; it belongs in deploy/stream-flags.yaml: %s", f, line)
					}
				}
				if !strings.Contains(b, envsubst) && (i == 0 || !strings.Contains(blocks[i-1], envsubst)) {
					t.Errorf("the block launching the stream (or the one before it) does not render the flags file with %q", envsubst)
				}
				if strings.Contains(line, "--update") {
					updates++
					// gcloud is given one flags file: the renames go at its end.
					if n := strings.Count(line, "--flags-file"); n != 1 {
						t.Errorf("the update gives gcloud %d flags files, want the one with deploy/stream-renames.yaml appended: %s", n, line)
					}
					if !strings.Contains(b, "cat deploy/stream-renames.yaml >> stream-flags.$PROJECT.yaml") {
						t.Errorf("the block updating the stream does not append deploy/stream-renames.yaml to the flags file: %s", line)
					}
					if inRelease {
						updateAt = append(updateAt, offsets[i])
					}
				} else if inRelease {
					t.Errorf("a release launches a new stream job while the old one runs (Dataflow refuses the name): %s", line)
				} else if firstLaunch < 0 {
					firstLaunch = offsets[i]
				}
			case strings.Contains(line, "cmd/inventory setup"):
				if inRelease {
					setupAt = append(setupAt, offsets[i])
				} else if firstSetup < 0 {
					firstSetup = offsets[i]
				}
			case strings.HasPrefix(line, "gcloud builds submit"):
				if inRelease {
					buildAt = append(buildAt, offsets[i])
				}
			}
			if strings.Contains(line, "bin/stream") || strings.Contains(line, "--runner=dataflow") {
				t.Errorf("runbook launches the stream binary by hand with its own flags: %s", line)
			}
		}
	}
	if launches == 0 || updates == 0 {
		t.Fatalf("runbook has %d stream launches, %d of them updates: want a first launch and an update", launches, updates)
	}
	if firstSetup < 0 || firstLaunch < 0 || firstSetup > firstLaunch {
		t.Errorf("first deploy: setup at %d, first launch at %d: setup must come first", firstSetup, firstLaunch)
	}
	if len(setupAt) == 0 || len(buildAt) == 0 || len(updateAt) == 0 {
		t.Fatalf("a release needs setup, build and update commands: found %d, %d, %d", len(setupAt), len(buildAt), len(updateAt))
	}
	if slices.Max(setupAt) > slices.Min(buildAt) || slices.Max(setupAt) > slices.Min(updateAt) {
		t.Errorf("a release runs setup (at %v) after the new code is built (%v) or updated (%v): the new code would write before its tables are ready", setupAt, buildAt, updateAt)
	}
	if strings.Contains(doc, "later releases repeat") {
		t.Error("the runbook still says later releases repeat first-deploy steps")
	}
	if regexp.MustCompile(`cp [^\n]*testdata/`).MatchString(doc) {
		t.Error("the runbook uploads testdata/ as production configuration")
	}
	for _, api := range []string{"iamcredentials.googleapis.com", "monitoring.googleapis.com"} {
		if !strings.Contains(doc, api) {
			t.Errorf("the runbook does not enable %s", api)
		}
	}

	// Alert policies: the runbook applies deploy/monitoring/*.json and
	// lists each file.
	if !strings.Contains(doc, "--policy-from-file=\"$f\"") || !strings.Contains(doc, "for f in deploy/monitoring/*.json") {
		t.Error("the runbook does not apply deploy/monitoring/*.json")
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "monitoring", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy/monitoring: %v %v", files, err)
	}
	for _, f := range files {
		if !strings.Contains(doc, "`"+filepath.Base(f)+"`") {
			t.Errorf("the runbook's table of alert policies lacks %s", filepath.Base(f))
		}
	}
}

// knownMetrics are metric types Google Cloud writes, each with the page of
// Google's metric list that documents it. A policy may name no other.
var knownMetrics = map[string]string{
	"run.googleapis.com/request_count":                              "https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-run (labels response_code, response_code_class)",
	"dataflow.googleapis.com/job/is_failed":                         "https://cloud.google.com/monitoring/api/metrics_gcp_d_h#gcp-dataflow",
	"dataflow.googleapis.com/job/system_lag":                        "https://cloud.google.com/monitoring/api/metrics_gcp_d_h#gcp-dataflow",
	"pubsub.googleapis.com/subscription/oldest_unacked_message_age": "https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-pubsub",
	"pubsub.googleapis.com/subscription/num_undelivered_messages":   "https://cloud.google.com/monitoring/api/metrics_gcp_p_z#gcp-pubsub",
	// The job's Beam counters, one time series per counter and step
	// (labels metric_name, ptransform): see userCounters for the names.
	userCounter: "https://cloud.google.com/monitoring/api/metrics_gcp_d_h#gcp-dataflow (labels metric_name, ptransform)",
}

// userCounter is the metric type of the job's Beam counters on Dataflow.
const userCounter = "dataflow.googleapis.com/job/user_counter"

// promQLName is the name Cloud Monitoring's PromQL gives a metric type:
// dots become underscores, the first slash a colon, the others underscores.
func promQLName(metricType string) string {
	domain, path, _ := strings.Cut(metricType, "/")
	return strings.ReplaceAll(domain, ".", "_") + ":" + strings.NewReplacer("/", "_", ".", "_").Replace(path)
}

type alertPolicy struct {
	DisplayName   string `json:"displayName"`
	Documentation struct {
		Content  string `json:"content"`
		MimeType string `json:"mimeType"`
	} `json:"documentation"`
	Combiner   string `json:"combiner"`
	Conditions []struct {
		DisplayName        string `json:"displayName"`
		ConditionThreshold *struct {
			Filter       string `json:"filter"`
			Aggregations []struct {
				AlignmentPeriod    string   `json:"alignmentPeriod"`
				PerSeriesAligner   string   `json:"perSeriesAligner"`
				CrossSeriesReducer string   `json:"crossSeriesReducer"`
				GroupByFields      []string `json:"groupByFields"`
			} `json:"aggregations"`
			Comparison     string          `json:"comparison"`
			ThresholdValue *float64        `json:"thresholdValue"`
			Duration       string          `json:"duration"`
			Trigger        json.RawMessage `json:"trigger"`
		} `json:"conditionThreshold"`
		ConditionPrometheusQueryLanguage *struct {
			Query              string `json:"query"`
			Duration           string `json:"duration"`
			EvaluationInterval string `json:"evaluationInterval"`
		} `json:"conditionPrometheusQueryLanguage"`
	} `json:"conditions"`
	AlertStrategy json.RawMessage `json:"alertStrategy"`
	Severity      string          `json:"severity"`
	Enabled       *bool           `json:"enabled"`
}

// TestAlertPolicies reads deploy/monitoring/*.json as Cloud Monitoring
// AlertPolicy resources: known fields only, and every condition names a
// metric type of knownMetrics, on the resources this deployment has.
func TestAlertPolicies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "deploy", "monitoring", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dataflow-system-lag.json", "dead-letter-rate.json", "nightly-failed.json", "nightly-missing.json", "pubsub-backlog.json"}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	if !slices.Equal(got, want) {
		t.Errorf("deploy/monitoring has %v, want %v", got, want)
	}
	metricType := regexp.MustCompile(`metric\.type\s*=\s*"([^"]+)"`)
	used := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var p alertPolicy
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("not an AlertPolicy this test knows: %v", err)
			}
			if p.DisplayName == "" || p.Documentation.Content == "" || len(p.Conditions) == 0 || p.Enabled == nil || !*p.Enabled {
				t.Fatalf("policy needs a name, documentation, conditions and enabled: %+v", p)
			}
			if len(p.Conditions) > 1 && p.Combiner != "OR" {
				t.Errorf("combiner %q: any one condition must fire", p.Combiner)
			}
			for _, c := range p.Conditions {
				var names []string
				switch {
				case c.ConditionThreshold != nil:
					ct := c.ConditionThreshold
					for _, m := range metricType.FindAllStringSubmatch(ct.Filter, -1) {
						names = append(names, m[1])
					}
					if len(names) != 1 || ct.Comparison == "" || ct.ThresholdValue == nil || len(ct.Aggregations) == 0 || ct.Duration == "" {
						t.Errorf("condition %q: want one metric.type, a comparison, a threshold, an aggregation and a duration: %+v", c.DisplayName, ct)
					}
					if !strings.Contains(ct.Filter, "resource.type") {
						t.Errorf("condition %q filter names no resource type", c.DisplayName)
					}
				case c.ConditionPrometheusQueryLanguage != nil:
					q := c.ConditionPrometheusQueryLanguage.Query
					for m := range knownMetrics {
						if strings.Contains(q, promQLName(m)+"{") {
							names = append(names, m)
						}
					}
					if len(names) != 1 {
						t.Errorf("condition %q: PromQL %q names no known metric (as %s)", c.DisplayName, q, promQLName("run.googleapis.com/request_count"))
					}
				default:
					t.Errorf("condition %q has no threshold or PromQL condition", c.DisplayName)
				}
				for _, n := range names {
					if _, ok := knownMetrics[n]; !ok {
						t.Errorf("condition %q names %s, which is not a metric type Google documents (knownMetrics)", c.DisplayName, n)
					}
					used[n] = true
				}
			}
			checkUserCounters(t, string(b))
			// The resources the policies watch are this deployment's.
			for _, name := range regexp.MustCompile(`(?:service_name|job_name|subscription_id)\s*=\s*\\?"([^"\\]+)\\?"`).FindAllStringSubmatch(string(b), -1) {
				if !slices.Contains([]string{"nightly-trigger", "inventory-stream", "inventory-sub"}, name[1]) {
					t.Errorf("policy watches %q, which this deployment does not create", name[1])
				}
			}
		})
	}
	for m := range dashboardMetrics(t) {
		used[m] = true
	}
	for m := range knownMetrics {
		if !used[m] {
			t.Errorf("no policy or dashboard uses %s", m)
		}
	}
}
