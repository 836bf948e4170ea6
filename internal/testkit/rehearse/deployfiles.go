package rehearse

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"
	"go.yaml.in/yaml/v3"

	"github.com/inventory-events/inventory/reports/trigger"
)

// The rehearsal's job flags come from the deploy files only: the stream's
// from deploy/stream-flags.yaml (the gcloud flags file the runbook launches
// with), the nightly job's from the Flex Template launch the trigger sends,
// built from deploy/cloudbuild.yaml. Neither this file nor any other of the
// rehearsal names a job flag of its own: flags_test.go checks that every
// "--flag" in the rehearsal's code is one of launcherFlags or rehearsalFlags.

// launcherFlags maps the Flex Template environment (gcloud dataflow
// flex-template run's flags) to the Beam Go flags the template launcher
// gives the binary. A gcloud flag the map lacks fails the rehearsal: Beam Go
// defines no flag for it, so the launch would die on an unknown flag or
// silently drop it (--enable-streaming-engine was such a flag: Beam turns
// Streaming Engine on for every streaming Go job itself).
var launcherFlags = map[string]string{
	"--project":                 "--project",
	"--region":                  "--region",
	"--service-account-email":   "--service_account_email",
	"--staging-location":        "--staging_location",
	"--temp-location":           "--temp_location",
	"--max-workers":             "--max_num_workers",
	"--num-workers":             "--num_workers",
	"--worker-machine-type":     "--worker_machine_type",
	"--network":                 "--network",
	"--subnetwork":              "--subnetwork",
	"--disable-public-ips":      "--no_use_public_ips",
	"--update":                  "--update",
	"--transform-name-mappings": "--transform_name_mapping",
}

// gcloudOnly are flags gcloud itself consumes: they reach no binary.
// (--set-env-vars is gcloud run deploy's, read from cloudbuild.yaml.)
var gcloudOnly = []string{"--template-file-gcs-location", "--parameters", "--set-env-vars"}

// rehearsalFlags are the flags the rehearsal adds that the deploy files
// cannot: the launcher's runner and job name, and the fakes' address.
var rehearsalFlags = map[string]string{
	"--runner":            "the Go template launcher runs the binary with the Dataflow runner",
	"--job_name":          "gcloud's JOB_NAME argument, or the trigger's launch request",
	"--dataflow_endpoint": "the fake Dataflow API on 127.0.0.1",
	"--help":              "the build step lists the jobs' flags",
}

// GcloudFlags is a parsed gcloud flags file: flag -> value (nil for a
// boolean flag given without a value, map for --parameters).
type GcloudFlags map[string]any

// ReadStreamFlags reads deploy/stream-flags.yaml with its placeholders
// filled in from vars (PROJECT, REGION, SUBNETWORK: the runbook's envsubst
// does the same with the operator's values). A placeholder it has no value
// for is an error. The files of appended (in deploy/) are added to its end,
// as the runbook's update appends deploy/stream-renames.yaml to the one
// flags file it gives gcloud; a flag set twice is an error, as in gcloud.
func ReadStreamFlags(root string, vars map[string]string, appended ...string) (GcloudFlags, error) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "stream-flags.yaml"))
	if err != nil {
		return nil, err
	}
	for _, name := range appended {
		more, err := os.ReadFile(filepath.Join(root, "deploy", name))
		if err != nil {
			return nil, err
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		b = append(b, more...)
	}
	var missing []string
	text := os.Expand(string(b), func(k string) string {
		v, ok := vars[k]
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("stream-flags.yaml: placeholders without a value: %v", missing)
	}
	var g GcloudFlags
	if err := yaml.Unmarshal([]byte(text), &g); err != nil {
		return nil, fmt.Errorf("stream-flags.yaml: %w", err)
	}
	return g, nil
}

// LauncherArgs returns the command line the template launcher gives the
// binary for a gcloud flex-template run of jobName with flags g: the
// environment mapped by launcherFlags, then every parameter as --NAME=VALUE.
func LauncherArgs(jobName string, g GcloudFlags) ([]string, error) {
	args := []string{"--runner=dataflow", "--job_name=" + jobName}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		v := g[k]
		if slices.Contains(gcloudOnly, k) {
			continue
		}
		beam, ok := launcherFlags[k]
		if !ok {
			return nil, fmt.Errorf("gcloud flag %s: Beam Go has no flag the launcher could pass it as (known: %v)", k, slices.Sorted(maps.Keys(launcherFlags)))
		}
		switch v := v.(type) {
		case nil:
			args = append(args, beam) // a boolean flag
		case map[string]any, map[string]string, GcloudFlags: // --transform-name-mappings: Beam takes JSON
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			args = append(args, beam+"="+string(b))
		default:
			args = append(args, beam+"="+fmt.Sprint(v))
		}
	}
	params, _ := asMap(g["--parameters"])
	for _, k := range slices.Sorted(maps.Keys(params)) {
		args = append(args, "--"+k+"="+fmt.Sprint(params[k]))
	}
	return args, nil
}

// FlexLaunchArgs returns the command line the template launcher gives the
// binary for the trigger's LaunchFlexTemplate request: its environment
// mapped as LauncherArgs maps gcloud's flags, then its parameters.
func FlexLaunchArgs(req *dataflowpb.LaunchFlexTemplateRequest) ([]string, error) {
	lp := req.GetLaunchParameter()
	e := lp.GetEnvironment()
	g := GcloudFlags{"--project": req.GetProjectId(), "--region": req.GetLocation()}
	for k, v := range map[string]string{
		"--service-account-email": e.GetServiceAccountEmail(), "--staging-location": e.GetStagingLocation(),
		"--temp-location": e.GetTempLocation(), "--network": e.GetNetwork(), "--subnetwork": e.GetSubnetwork(),
		"--worker-machine-type": e.GetMachineType(),
	} {
		if v != "" {
			g[k] = v
		}
	}
	if e.GetMaxWorkers() > 0 {
		g["--max-workers"] = strconv.Itoa(int(e.GetMaxWorkers()))
	}
	if e.GetNumWorkers() > 0 {
		g["--num-workers"] = strconv.Itoa(int(e.GetNumWorkers()))
	}
	if e.GetIpConfiguration() == dataflowpb.WorkerIPAddressConfiguration_WORKER_IP_PRIVATE {
		g["--disable-public-ips"] = nil
	}
	if e.GetEnableStreamingEngine() || len(e.GetAdditionalExperiments()) > 0 {
		return nil, fmt.Errorf("the trigger's launch sets Streaming Engine or experiments %v: the launcher has no Beam Go flag to pass them as", e.GetAdditionalExperiments())
	}
	params := map[string]any{}
	for k, v := range lp.GetParameters() {
		params[k] = v
	}
	g["--parameters"] = params
	return LauncherArgs(lp.GetJobName(), g)
}

// ArgValue returns the value of --name=VALUE in args, and whether it is there.
func ArgValue(args []string, name string) (string, bool) {
	for _, a := range slices.Backward(args) {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "true", true
		}
	}
	return "", false
}

// asMap returns v as a map: YAML decodes a nested mapping of a GcloudFlags
// as a GcloudFlags.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case GcloudFlags:
		return m, true
	}
	return nil, false
}

// CloudbuildTriggerEnv returns the trigger's environment as the deploy step
// of deploy/cloudbuild.yaml sets it, with the substitutions' defaults and
// PROJECT_ID and PROJECT_NUMBER as given.
func CloudbuildTriggerEnv(root, project, projectNumber string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "cloudbuild.yaml"))
	if err != nil {
		return nil, err
	}
	var cb struct {
		Substitutions map[string]string `yaml:"substitutions"`
		Steps         []struct {
			ID   string   `yaml:"id"`
			Args []string `yaml:"args"`
		} `yaml:"steps"`
	}
	if err := yaml.Unmarshal(b, &cb); err != nil {
		return nil, fmt.Errorf("cloudbuild.yaml: %w", err)
	}
	subst := map[string]string{"PROJECT_ID": project, "PROJECT_NUMBER": projectNumber, "BUILD_ID": "rehearsal"}
	expand := func(s string) string {
		for range 5 { // substitutions refer to substitutions
			s = os.Expand(s, func(k string) string {
				if v, ok := subst[k]; ok {
					return v
				}
				return cb.Substitutions[k]
			})
		}
		return s
	}
	for _, s := range cb.Steps {
		for _, a := range s.Args {
			v, ok := strings.CutPrefix(a, "--set-env-vars=")
			if !ok || s.ID != "deploy-trigger" {
				continue
			}
			sep := ","
			if strings.HasPrefix(v, "^") {
				end := strings.Index(v[1:], "^") + 1
				sep, v = v[1:end], v[end+1:]
			}
			env := map[string]string{}
			for _, kv := range strings.Split(v, sep) {
				k, val, _ := strings.Cut(kv, "=")
				env[k] = expand(val)
			}
			return env, nil
		}
	}
	return nil, fmt.Errorf("cloudbuild.yaml: no deploy-trigger step with --set-env-vars")
}

// CheckTemplateParameters checks params against deploy/templates/JOB-metadata.json:
// each is declared and matches the declared regexes, and every required one is given.
func CheckTemplateParameters(root, job string, params map[string]string) error {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "templates", job+"-metadata.json"))
	if err != nil {
		return err
	}
	var md struct {
		Parameters []struct {
			Name       string   `json:"name"`
			IsOptional bool     `json:"isOptional"`
			Regexes    []string `json:"regexes"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return fmt.Errorf("%s metadata: %w", job, err)
	}
	declared := map[string]bool{}
	for _, p := range md.Parameters {
		declared[p.Name] = true
		v, given := params[p.Name]
		if !given {
			if !p.IsOptional {
				return fmt.Errorf("the launch lacks the %s template's required parameter %s", job, p.Name)
			}
			continue
		}
		for _, re := range p.Regexes {
			if !regexp.MustCompile(re).MatchString(v) {
				return fmt.Errorf("parameter %s=%s does not match the %s template's %s", p.Name, v, job, strconv.Quote(re))
			}
		}
	}
	for k := range params {
		if !declared[k] {
			return fmt.Errorf("the launch passes %s, which the %s template does not declare", k, job)
		}
	}
	return nil
}

// StringParams returns the --parameters of g as strings.
func StringParams(g GcloudFlags) map[string]string {
	out := map[string]string{}
	params, _ := asMap(g["--parameters"])
	for k, v := range params {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// TriggerDataflowConfig is the trigger's Dataflow launch configuration from
// its environment (CloudbuildTriggerEnv), read as cmd/trigger reads it in
// production.
func TriggerDataflowConfig(env map[string]string) (trigger.DataflowConfig, error) {
	params := map[string]string{}
	for _, kv := range strings.Split(env["TEMPLATE_PARAMETERS"], ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			params[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var maxWorkers int64
	if v := env["MAX_WORKERS"]; v != "" {
		var err error
		if maxWorkers, err = strconv.ParseInt(v, 10, 32); err != nil {
			return trigger.DataflowConfig{}, fmt.Errorf("cloudbuild.yaml: MAX_WORKERS %q: %w", v, err)
		}
	}
	return trigger.DataflowConfig{
		Project: env["PROJECT"], Region: env["REGION"], TemplatePath: env["TEMPLATE_GCS_PATH"],
		Parameters: params, DateParameter: "date", ServiceAccountEmail: env["DATAFLOW_SERVICE_ACCOUNT"],
		TempLocation: env["TEMP_LOCATION"], StagingLocation: env["STAGING_LOCATION"],
		MaxWorkers: int32(maxWorkers), Subnetwork: env["SUBNETWORK"],
	}, nil
}
