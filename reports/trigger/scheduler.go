package trigger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	scheduler "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// SchedulerConfig is the Cloud Scheduler job that fires the nightly trigger.
type SchedulerConfig struct {
	Project string
	Region  string
	// JobID defaults to SchedulerJobID (nightly-inventory-summary).
	JobID string
	// Schedule defaults to DefaultSchedule (0 3 * * *).
	Schedule string
	// TimeZone is an IANA zone name; it defaults to UTC.
	TimeZone string
	// TargetURL is the trigger endpoint, https://SERVICE/v1/nightly.
	TargetURL string
	// InvokerServiceAccount is the account whose OIDC token Scheduler sends.
	InvokerServiceAccount string
	// Audience of the token. Default: TargetURL's scheme and host (the Cloud
	// Run service URL, what Cloud Run and the service's own check expect).
	Audience string
	// Retries: defaults 3 retries, 5m..1h backoff, 5 doublings, no total limit.
	RetryCount       int32
	MinBackoff       time.Duration
	MaxBackoff       time.Duration
	MaxDoublings     int32
	MaxRetryDuration time.Duration
	AttemptDeadline  time.Duration // default 3m
	Description      string
}

func (c SchedulerConfig) withDefaults() (SchedulerConfig, error) {
	if c.JobID == "" {
		c.JobID = SchedulerJobID
	}
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if c.RetryCount == 0 {
		c.RetryCount = 3
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 5 * time.Minute
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = time.Hour
	}
	if c.MaxDoublings == 0 {
		c.MaxDoublings = 5
	}
	if c.AttemptDeadline == 0 {
		c.AttemptDeadline = 3 * time.Minute
	}
	if c.Description == "" {
		c.Description = "Launches the nightly inventory summary for yesterday."
	}
	switch {
	case c.Project == "":
		return c, errors.New("project is required")
	case c.Region == "":
		return c, errors.New("region is required")
	case c.InvokerServiceAccount == "":
		return c, errors.New("invoker service account is required")
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return c, fmt.Errorf("time zone: %w", err)
	}
	if _, err := ParseCron(c.Schedule); err != nil {
		return c, err
	}
	u, err := url.Parse(c.TargetURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("target URL %q: want an https URL", c.TargetURL)
	}
	if c.Audience == "" {
		c.Audience = u.Scheme + "://" + u.Host
	}
	return c, nil
}

// JobName is the job's resource name, projects/P/locations/R/jobs/ID.
func (c SchedulerConfig) jobName() string {
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s", c.Project, c.Region, c.JobID)
}

// DesiredJob is the Scheduler job EnsureSchedulerJob converges to.
func (c SchedulerConfig) DesiredJob() (*schedulerpb.Job, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("scheduler job: %w", err)
	}
	return &schedulerpb.Job{
		Name:        c.jobName(),
		Description: c.Description,
		Schedule:    c.Schedule,
		TimeZone:    c.TimeZone,
		Target: &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{
			Uri:        c.TargetURL,
			HttpMethod: schedulerpb.HttpMethod_POST,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       []byte("{}"),
			AuthorizationHeader: &schedulerpb.HttpTarget_OidcToken{OidcToken: &schedulerpb.OidcToken{
				ServiceAccountEmail: c.InvokerServiceAccount,
				Audience:            c.Audience,
			}},
		}},
		RetryConfig: &schedulerpb.RetryConfig{
			RetryCount:         c.RetryCount,
			MaxRetryDuration:   durationpb.New(c.MaxRetryDuration),
			MinBackoffDuration: durationpb.New(c.MinBackoff),
			MaxBackoffDuration: durationpb.New(c.MaxBackoff),
			MaxDoublings:       c.MaxDoublings,
		},
		AttemptDeadline: durationpb.New(c.AttemptDeadline),
	}, nil
}

// EnsureSchedulerJob creates the nightly Scheduler job, or updates the fields
// that differ from cfg; changed is false when the job already matched. It
// leaves the job's state (enabled or paused) alone.
func EnsureSchedulerJob(ctx context.Context, cfg SchedulerConfig, opts ...option.ClientOption) (changed bool, err error) {
	want, err := cfg.DesiredJob()
	if err != nil {
		return false, err
	}
	client, err := scheduler.NewCloudSchedulerClient(ctx, opts...)
	if err != nil {
		return false, fmt.Errorf("scheduler.NewCloudSchedulerClient: %w", err)
	}
	defer client.Close()

	have, err := client.GetJob(ctx, &schedulerpb.GetJobRequest{Name: want.Name})
	if status.Code(err) == codes.NotFound {
		parent := fmt.Sprintf("projects/%s/locations/%s", cfg.Project, cfg.Region)
		if _, err := client.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: parent, Job: want}); err != nil {
			return false, fmt.Errorf("scheduler.CreateJob %s: %w", want.Name, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("scheduler.GetJob %s: %w", want.Name, err)
	}

	paths := jobDiff(have, want)
	if len(paths) == 0 {
		return false, nil
	}
	if _, err := client.UpdateJob(ctx, &schedulerpb.UpdateJobRequest{
		Job:        want,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	}); err != nil {
		return false, fmt.Errorf("scheduler.UpdateJob %s %v: %w", want.Name, paths, err)
	}
	return true, nil
}

// jobDiff returns the update-mask paths of the managed fields where have
// differs from want. Headers are compared on the keys we set, since Scheduler
// may add its own (User-Agent).
func jobDiff(have, want *schedulerpb.Job) []string {
	var paths []string
	if have.GetDescription() != want.GetDescription() {
		paths = append(paths, "description")
	}
	if have.GetSchedule() != want.GetSchedule() {
		paths = append(paths, "schedule")
	}
	if have.GetTimeZone() != want.GetTimeZone() {
		paths = append(paths, "time_zone")
	}
	if !httpTargetEqual(have.GetHttpTarget(), want.GetHttpTarget()) {
		paths = append(paths, "http_target")
	}
	if !retryEqual(have.GetRetryConfig(), want.GetRetryConfig()) {
		paths = append(paths, "retry_config")
	}
	if have.GetAttemptDeadline().AsDuration() != want.GetAttemptDeadline().AsDuration() {
		paths = append(paths, "attempt_deadline")
	}
	return paths
}

func httpTargetEqual(have, want *schedulerpb.HttpTarget) bool {
	if have == nil || want == nil {
		return have == want
	}
	if have.GetUri() != want.GetUri() || have.GetHttpMethod() != want.GetHttpMethod() ||
		string(have.GetBody()) != string(want.GetBody()) ||
		!proto.Equal(have.GetOidcToken(), want.GetOidcToken()) || have.GetOauthToken() != nil {
		return false
	}
	for k, v := range want.GetHeaders() {
		if have.GetHeaders()[k] != v {
			return false
		}
	}
	return true
}

func retryEqual(have, want *schedulerpb.RetryConfig) bool {
	return have.GetRetryCount() == want.GetRetryCount() &&
		have.GetMaxDoublings() == want.GetMaxDoublings() &&
		have.GetMinBackoffDuration().AsDuration() == want.GetMinBackoffDuration().AsDuration() &&
		have.GetMaxBackoffDuration().AsDuration() == want.GetMaxBackoffDuration().AsDuration() &&
		have.GetMaxRetryDuration().AsDuration() == want.GetMaxRetryDuration().AsDuration()
}
