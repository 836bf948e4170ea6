package main

import (
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
)

func TestCloudbuildTriggerEnv(t *testing.T) {
	env, err := rehearse.CloudbuildTriggerEnv("../../..", project, projectNumber)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"PROJECT":                  project,
		"TEMPLATE_GCS_PATH":        "gs://deploycheck-dataflow-templates/nightly.json",
		"DATAFLOW_SERVICE_ACCOUNT": sa("inventory-nightly"),
		"EXPECTED_AUDIENCE":        "https://nightly-trigger-123456789012." + env["REGION"] + ".run.app",
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	if strings.Contains(strings.Join(mapValues(env), " "), "${") {
		t.Errorf("unexpanded substitution in %v", env)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestCheckTemplateParameters(t *testing.T) {
	good := map[string]string{"date": "2026-11-24", "warehouse": "bq://p.inventory", "output": "gs://p-reports/reports", "timezone": "Europe/Berlin"}
	if err := rehearse.CheckTemplateParameters("../../..", "nightly", good); err != nil {
		t.Fatalf("good parameters: %v", err)
	}
	for name, c := range map[string]struct {
		edit func(map[string]string)
		want string
	}{
		"undeclared":       {func(m map[string]string) { m["shards"] = "4" }, "does not declare"},
		"regex mismatch":   {func(m map[string]string) { m["date"] = "24.11.2026" }, "does not match"},
		"required missing": {func(m map[string]string) { delete(m, "output") }, "required parameter output"},
	} {
		p := map[string]string{}
		for k, v := range good {
			p[k] = v
		}
		c.edit(p)
		if err := rehearse.CheckTemplateParameters("../../..", "nightly", p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
