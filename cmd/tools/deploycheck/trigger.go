package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"

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
	if err := rehearse.CheckTemplateParameters(c.root, "nightly", lp.GetParameters()); err != nil {
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
	env, err := rehearse.CloudbuildTriggerEnv(c.root, project, projectNumber)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := rehearse.TriggerDataflowConfig(env)
	if err != nil {
		return nil, nil, err
	}
	req, err := rehearse.Launch(ctx, cfg, reportDate)
	if err != nil {
		return nil, nil, fmt.Errorf("trigger launch: %w", err)
	}
	return req, env, nil
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
