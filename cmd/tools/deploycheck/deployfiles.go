package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"
	"go.yaml.in/yaml/v3"
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

// streamFlagVars are the placeholders of deploy/stream-flags.yaml and the
// values the rehearsal fills in (the runbook's envsubst does the same with
// the operator's values).
var streamFlagVars = map[string]string{
	"PROJECT":    project,
	"REGION":     region,
	"SUBNETWORK": "regions/" + region + "/subnetworks/inventory",
}

// gcloudFlags is a parsed gcloud flags file: flag -> value (nil for a
// boolean flag given without a value, map for --parameters).
type gcloudFlags map[string]any

// readStreamFlags reads deploy/stream-flags.yaml with its placeholders
// filled in. A placeholder it has no value for is an error.
func readStreamFlags(root string) (gcloudFlags, error) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "stream-flags.yaml"))
	if err != nil {
		return nil, err
	}
	var missing []string
	text := os.Expand(string(b), func(k string) string {
		v, ok := streamFlagVars[k]
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("stream-flags.yaml: placeholders without a value: %v", missing)
	}
	var g gcloudFlags
	if err := yaml.Unmarshal([]byte(text), &g); err != nil {
		return nil, fmt.Errorf("stream-flags.yaml: %w", err)
	}
	return g, nil
}

// launcherArgs returns the command line the template launcher gives the
// binary for a gcloud flex-template run of jobName with flags g: the
// environment mapped by launcherFlags, then every parameter as --NAME=VALUE.
func launcherArgs(jobName string, g gcloudFlags) ([]string, error) {
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
		case map[string]any, gcloudFlags: // --transform-name-mappings: Beam takes JSON
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

// flexLaunchArgs returns the command line the template launcher gives the
// binary for the trigger's LaunchFlexTemplate request: its environment
// mapped as launcherArgs maps gcloud's flags, then its parameters.
func flexLaunchArgs(req *dataflowpb.LaunchFlexTemplateRequest) ([]string, error) {
	lp := req.GetLaunchParameter()
	e := lp.GetEnvironment()
	g := gcloudFlags{"--project": req.GetProjectId(), "--region": req.GetLocation()}
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
	return launcherArgs(lp.GetJobName(), g)
}

// argValue returns the value of --name=VALUE in args, and whether it is there.
func argValue(args []string, name string) (string, bool) {
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

// asMap returns v as a map: YAML decodes a nested mapping of a gcloudFlags
// as a gcloudFlags.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case gcloudFlags:
		return m, true
	}
	return nil, false
}
