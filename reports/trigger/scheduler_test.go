package trigger_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/testkit/gcpfake"
	"github.com/inventory-events/inventory/reports/trigger"
)

const jobResource = "projects/inventory-prod/locations/europe-west1/jobs/nightly-inventory-summary"

func schedulerConfig() trigger.SchedulerConfig {
	return trigger.SchedulerConfig{
		Project:               project,
		Region:                region,
		TimeZone:              "Europe/Berlin",
		TargetURL:             "https://nightly-trigger-abc123-ew.a.run.app/v1/nightly",
		InvokerServiceAccount: invokerSA,
	}
}

func TestEnsureSchedulerJobCreates(t *testing.T) {
	fake, opts := gcpfake.StartScheduler(t)
	ctx := context.Background()
	changed, err := trigger.EnsureSchedulerJob(ctx, schedulerConfig(), opts...)
	if err != nil || !changed {
		t.Fatalf("first ensure: changed=%v err=%v, want a create", changed, err)
	}
	creates := fake.Creates()
	if len(creates) != 1 || creates[0].GetParent() != "projects/inventory-prod/locations/europe-west1" {
		t.Fatalf("creates = %v", creates)
	}
	j := creates[0].GetJob()
	h := j.GetHttpTarget()
	oidc := h.GetOidcToken()
	r := j.GetRetryConfig()
	checks := map[string][2]any{
		"name":                     {j.GetName(), jobResource},
		"schedule":                 {j.GetSchedule(), "0 3 * * *"},
		"time_zone":                {j.GetTimeZone(), "Europe/Berlin"},
		"uri":                      {h.GetUri(), "https://nightly-trigger-abc123-ew.a.run.app/v1/nightly"},
		"http_method":              {h.GetHttpMethod(), schedulerpb.HttpMethod_POST},
		"body":                     {string(h.GetBody()), "{}"},
		"content-type":             {h.GetHeaders()["Content-Type"], "application/json"},
		"oidc service account":     {oidc.GetServiceAccountEmail(), invokerSA},
		"oidc audience":            {oidc.GetAudience(), "https://nightly-trigger-abc123-ew.a.run.app"},
		"retry_count":              {r.GetRetryCount(), int32(3)},
		"min_backoff":              {r.GetMinBackoffDuration().AsDuration(), 5 * time.Minute},
		"max_backoff":              {r.GetMaxBackoffDuration().AsDuration(), time.Hour},
		"max_doublings":            {r.GetMaxDoublings(), int32(5)},
		"attempt_deadline":         {j.GetAttemptDeadline().AsDuration(), 3 * time.Minute},
		"no oauth token":           {h.GetOauthToken() == nil, true},
		"state left to the server": {j.GetState(), schedulerpb.Job_STATE_UNSPECIFIED},
	}
	for field, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", field, c[0], c[1])
		}
	}

	// The same config again changes nothing, though the server added a
	// User-Agent header and set the state.
	changed, err = trigger.EnsureSchedulerJob(ctx, schedulerConfig(), opts...)
	if err != nil || changed || len(fake.Updates()) != 0 || len(fake.Creates()) != 1 {
		t.Fatalf("second ensure: changed=%v err=%v updates=%d creates=%d, want no change", changed, err, len(fake.Updates()), len(fake.Creates()))
	}
}

func TestEnsureSchedulerJobUpdatesDrift(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*trigger.SchedulerConfig)
		drift     func(*schedulerpb.Job)
		wantPaths []string
	}{
		{name: "time zone", edit: func(c *trigger.SchedulerConfig) { c.TimeZone = "America/New_York" }, wantPaths: []string{"time_zone"}},
		{name: "schedule", edit: func(c *trigger.SchedulerConfig) { c.Schedule = "30 2 * * *" }, wantPaths: []string{"schedule"}},
		{name: "new service URL", edit: func(c *trigger.SchedulerConfig) {
			c.TargetURL = "https://nightly-trigger-zzz-ew.a.run.app/v1/nightly"
		}, wantPaths: []string{"http_target"}},
		{name: "invoker account", edit: func(c *trigger.SchedulerConfig) {
			c.InvokerServiceAccount = "other@inventory-prod.iam.gserviceaccount.com"
		}, wantPaths: []string{"http_target"}},
		{name: "retries", edit: func(c *trigger.SchedulerConfig) { c.RetryCount = 5 }, wantPaths: []string{"retry_config"}},
		{name: "changed by hand", drift: func(j *schedulerpb.Job) {
			j.Schedule = "0 4 * * *"
			j.GetHttpTarget().GetOidcToken().Audience = "https://wrong"
			j.AttemptDeadline = nil
		}, wantPaths: []string{"schedule", "http_target", "attempt_deadline"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, opts := gcpfake.StartScheduler(t)
			ctx := context.Background()
			if _, err := trigger.EnsureSchedulerJob(ctx, schedulerConfig(), opts...); err != nil {
				t.Fatal(err)
			}
			cfg := schedulerConfig()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			if tc.drift != nil {
				j := fake.Job(jobResource)
				tc.drift(j)
				fake.SetJob(j)
			}
			changed, err := trigger.EnsureSchedulerJob(ctx, cfg, opts...)
			if err != nil || !changed {
				t.Fatalf("ensure: changed=%v err=%v, want an update", changed, err)
			}
			updates := fake.Updates()
			if len(updates) != 1 {
				t.Fatalf("%d updates, want 1", len(updates))
			}
			if paths := updates[0].GetUpdateMask().GetPaths(); !slices.Equal(paths, tc.wantPaths) {
				t.Errorf("update mask = %v, want %v", paths, tc.wantPaths)
			}
			want, err := cfg.DesiredJob()
			if err != nil {
				t.Fatal(err)
			}
			got := fake.Job(jobResource)
			delete(got.GetHttpTarget().Headers, "User-Agent")
			got.State, got.UserUpdateTime = 0, nil
			if !proto.Equal(got, want) {
				t.Errorf("stored job after update:\n%v\nwant:\n%v", got, want)
			}
			// Converged: a further ensure does nothing.
			if changed, err := trigger.EnsureSchedulerJob(ctx, cfg, opts...); err != nil || changed {
				t.Errorf("ensure after update: changed=%v err=%v", changed, err)
			}
		})
	}
}

func TestEnsureSchedulerJobRejectsBadConfig(t *testing.T) {
	tests := map[string]func(*trigger.SchedulerConfig){
		"no project":     func(c *trigger.SchedulerConfig) { c.Project = "" },
		"no invoker":     func(c *trigger.SchedulerConfig) { c.InvokerServiceAccount = "" },
		"bad time zone":  func(c *trigger.SchedulerConfig) { c.TimeZone = "Mars/Olympus" },
		"bad schedule":   func(c *trigger.SchedulerConfig) { c.Schedule = "at three" },
		"http target":    func(c *trigger.SchedulerConfig) { c.TargetURL = "http://insecure.example/v1/nightly" },
		"missing target": func(c *trigger.SchedulerConfig) { c.TargetURL = "" },
	}
	fake, opts := gcpfake.StartScheduler(t)
	for name, edit := range tests {
		cfg := schedulerConfig()
		edit(&cfg)
		if _, err := trigger.EnsureSchedulerJob(context.Background(), cfg, opts...); err == nil || !strings.Contains(err.Error(), "scheduler job") {
			t.Errorf("%s: err = %v, want a config error", name, err)
		}
	}
	if n := len(fake.Creates()); n != 0 {
		t.Errorf("%d creates for bad configs", n)
	}
}
