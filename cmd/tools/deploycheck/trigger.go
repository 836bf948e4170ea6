package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"
	"go.yaml.in/yaml/v3"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
	"github.com/inventory-events/inventory/reports/trigger"
)

// triggerStep rehearses the nightly path's production calls: the trigger's
// environment as deploy/cloudbuild.yaml sets it (substitutions filled in
// for a project "deploycheck"), a POST /v1/nightly through the service's
// handler launching the Flex Template on the fake Dataflow API, and the
// Scheduler job inventory setup would create, on the fake Cloud Scheduler.
// The launch's parameters must be ones the nightly template declares,
// matching its regexes, with every required one present.
func triggerStep(ctx context.Context, c *check) (string, error) {
	req, env, err := triggerLaunch(ctx, c)
	if err != nil {
		return "", err
	}
	lp := req.GetLaunchParameter()
	switch {
	case req.GetProjectId() != project || req.GetLocation() != region:
		return "", fmt.Errorf("launch in %s/%s, want %s/%s", req.GetProjectId(), req.GetLocation(), project, region)
	case lp.GetContainerSpecGcsPath() != "gs://"+project+"-dataflow-templates/nightly.json":
		return "", fmt.Errorf("launch of template %s, want gs://%s-dataflow-templates/nightly.json", lp.GetContainerSpecGcsPath(), project)
	case lp.GetJobName() != trigger.JobName(reportDate):
		return "", fmt.Errorf("job name %s", lp.GetJobName())
	case lp.GetEnvironment().GetServiceAccountEmail() != sa("inventory-nightly"):
		return "", fmt.Errorf("launch as %q, want %s", lp.GetEnvironment().GetServiceAccountEmail(), sa("inventory-nightly"))
	case !strings.HasPrefix(lp.GetEnvironment().GetStagingLocation(), "gs://"+project+"-dataflow-nightly/"):
		return "", fmt.Errorf("staging location %s, want the jobs' bucket", lp.GetEnvironment().GetStagingLocation())
	}
	if err := checkTemplateParameters(c.root, "nightly", lp.GetParameters()); err != nil {
		return "", err
	}

	target := "https://nightly-trigger-123456789012." + region + ".run.app/v1/nightly"
	job, err := rehearse.Schedule(ctx, trigger.SchedulerConfig{Project: project, Region: region,
		TimeZone: "Europe/Berlin", TargetURL: target, InvokerServiceAccount: sa("inventory-scheduler")})
	if err != nil {
		return "", fmt.Errorf("scheduler job: %w", err)
	}
	ht := job.GetHttpTarget()
	aud := ht.GetOidcToken().GetAudience()
	accepted := false
	for _, a := range strings.Split(env["EXPECTED_AUDIENCE"], ",") {
		accepted = accepted || strings.TrimSuffix(a, "/") == aud
	}
	switch {
	case ht.GetUri() != target || ht.GetOidcToken().GetServiceAccountEmail() != sa("inventory-scheduler"):
		return "", fmt.Errorf("scheduler job targets %s with a token of %s", ht.GetUri(), ht.GetOidcToken().GetServiceAccountEmail())
	case !accepted:
		return "", fmt.Errorf("scheduler job's audience %s is not one the trigger accepts (EXPECTED_AUDIENCE=%s)", aud, env["EXPECTED_AUDIENCE"])
	}
	return fmt.Sprintf("POST /v1/nightly launched %s from %s as %s (a second POST found it); parameters fit the template; Scheduler job %s %q %s created then unchanged, audience %s accepted",
		lp.GetJobName(), lp.GetContainerSpecGcsPath(), lp.GetEnvironment().GetServiceAccountEmail(),
		trigger.SchedulerJobID, job.GetSchedule(), job.GetTimeZone(), aud), nil
}

// triggerLaunch serves the trigger configured as deploy/cloudbuild.yaml
// deploys it and returns the Flex Template launch it sends for reportDate,
// and its environment.
func triggerLaunch(ctx context.Context, c *check) (*dataflowpb.LaunchFlexTemplateRequest, map[string]string, error) {
	env, err := cloudbuildTriggerEnv(c.root)
	if err != nil {
		return nil, nil, err
	}
	params := map[string]string{}
	for _, kv := range strings.Split(env["TEMPLATE_PARAMETERS"], ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			params[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var maxWorkers int64
	if v := env["MAX_WORKERS"]; v != "" {
		if maxWorkers, err = strconv.ParseInt(v, 10, 32); err != nil {
			return nil, nil, fmt.Errorf("cloudbuild.yaml: MAX_WORKERS %q: %w", v, err)
		}
	}
	cfg := trigger.DataflowConfig{
		Project: env["PROJECT"], Region: env["REGION"], TemplatePath: env["TEMPLATE_GCS_PATH"],
		Parameters: params, DateParameter: "date", ServiceAccountEmail: env["DATAFLOW_SERVICE_ACCOUNT"],
		TempLocation: env["TEMP_LOCATION"], StagingLocation: env["STAGING_LOCATION"],
		MaxWorkers: int32(maxWorkers), Subnetwork: env["SUBNETWORK"],
	}
	req, err := rehearse.Launch(ctx, cfg, reportDate)
	if err != nil {
		return nil, nil, fmt.Errorf("trigger launch: %w", err)
	}
	return req, env, nil
}

// cloudbuildTriggerEnv returns the trigger's environment as the deploy step
// of deploy/cloudbuild.yaml sets it, with the substitutions' defaults and
// PROJECT_ID=deploycheck, PROJECT_NUMBER=123456789012.
func cloudbuildTriggerEnv(root string) (map[string]string, error) {
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
	subst := map[string]string{"PROJECT_ID": project, "PROJECT_NUMBER": "123456789012", "BUILD_ID": "deploycheck"}
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

// checkTemplateParameters checks params against deploy/templates/JOB-metadata.json:
// each is declared and matches the declared regexes, and every required one is given.
func checkTemplateParameters(root, job string, params map[string]string) error {
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

// deployFilesStep runs the cross-checks of deploy/ (go test ./deploy).
func deployFilesStep(ctx context.Context, c *check) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "./deploy")
	cmd.Dir = c.root
	out, err := cmd.CombinedOutput()
	fmt.Fprintf(c.logs, "$ go test ./deploy\n%s\n", out)
	if err != nil {
		return "", fmt.Errorf("go test ./deploy: %v: %s", err, lastLines(string(out), 12))
	}
	tests := regexp.MustCompile(`(?m)^--- PASS: (Test\w+)`).FindAllStringSubmatch(string(out), -1)
	var names []string
	for _, t := range tests {
		names = append(names, t[1])
	}
	return fmt.Sprintf("go test ./deploy: %s", strings.Join(names, ", ")), nil
}
