package trigger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"

	dataflow "cloud.google.com/go/dataflow/apiv1beta3"
	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DataflowConfig says where and how the nightly Flex Template is launched.
type DataflowConfig struct {
	Project string
	Region  string
	// TemplatePath is the Flex Template spec file, gs://BUCKET/templates/nightly.json.
	TemplatePath string
	// Parameters go to every launch: the nightly job's flags (output, dataset, ...).
	Parameters map[string]string
	// DateParameter is the template parameter carrying the report date. Default "date".
	DateParameter string

	// Worker environment. Empty fields take Dataflow's defaults.
	ServiceAccountEmail string
	TempLocation        string
	StagingLocation     string
	MaxWorkers          int32
	Subnetwork          string
	Labels              map[string]string
}

// DataflowLauncher launches the nightly job as a Dataflow Flex Template.
//
// The job name is derived from the date (JobName), so launches are idempotent:
// an existing job of that name that is active or done is returned instead of
// launching, and Dataflow's ALREADY_EXISTS for a duplicate active name (a race
// with another instance) resolves to the job that won.
type DataflowLauncher struct {
	cfg  DataflowConfig
	flex *dataflow.FlexTemplatesClient
	jobs *dataflow.JobsV1Beta3Client
}

var _ Launcher = (*DataflowLauncher)(nil)

// NewDataflowLauncher opens the Dataflow API clients. opts go to both (tests
// pass option.WithEndpoint and option.WithoutAuthentication).
func NewDataflowLauncher(ctx context.Context, cfg DataflowConfig, opts ...option.ClientOption) (*DataflowLauncher, error) {
	switch {
	case cfg.Project == "":
		return nil, errors.New("dataflow launcher: project is required")
	case cfg.Region == "":
		return nil, errors.New("dataflow launcher: region is required")
	case cfg.TemplatePath == "":
		return nil, errors.New("dataflow launcher: template path is required")
	}
	if cfg.DateParameter == "" {
		cfg.DateParameter = "date"
	}
	flex, err := dataflow.NewFlexTemplatesClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("dataflow.NewFlexTemplatesClient: %w", err)
	}
	jobs, err := dataflow.NewJobsV1Beta3Client(ctx, opts...)
	if err != nil {
		flex.Close()
		return nil, fmt.Errorf("dataflow.NewJobsV1Beta3Client: %w", err)
	}
	return &DataflowLauncher{cfg: cfg, flex: flex, jobs: jobs}, nil
}

// Close closes the API clients.
func (d *DataflowLauncher) Close() error {
	return errors.Join(d.flex.Close(), d.jobs.Close())
}

// Launch returns the job for date if it is active or done, and launches the
// Flex Template otherwise (no job yet, or the last one failed or was cancelled).
func (d *DataflowLauncher) Launch(ctx context.Context, date string) (Run, error) {
	if _, err := parseDate(date); err != nil {
		return Run{}, fmt.Errorf("dataflow launch: %w", err)
	}
	name := JobName(date)
	prev, err := d.latest(ctx, date)
	switch {
	case err == nil && (prev.State.Active() || prev.State == StateDone):
		prev.Existing = true
		return prev, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return Run{}, err
	}

	resp, err := d.flex.LaunchFlexTemplate(ctx, d.launchRequest(date))
	if isAlreadyExists(err) {
		// Another launch of this name is active: return it.
		if run, lerr := d.latest(ctx, date); lerr == nil {
			run.Existing = true
			return run, nil
		}
		return Run{}, fmt.Errorf("dataflow.LaunchFlexTemplate %s: job exists but cannot be listed: %w", name, err)
	}
	if err != nil {
		return Run{}, fmt.Errorf("dataflow.LaunchFlexTemplate %s: %w", name, err)
	}
	job := resp.GetJob()
	if job.GetId() == "" {
		return Run{}, fmt.Errorf("dataflow.LaunchFlexTemplate %s: response has no job", name)
	}
	return runFromJob(date, job), nil
}

func (d *DataflowLauncher) launchRequest(date string) *dataflowpb.LaunchFlexTemplateRequest {
	params := make(map[string]string, len(d.cfg.Parameters)+1)
	maps.Copy(params, d.cfg.Parameters)
	params[d.cfg.DateParameter] = date
	labels := map[string]string{"app": "inventory", "job": jobNamePrefix, "report-date": date}
	maps.Copy(labels, d.cfg.Labels)
	return &dataflowpb.LaunchFlexTemplateRequest{
		ProjectId: d.cfg.Project,
		Location:  d.cfg.Region,
		LaunchParameter: &dataflowpb.LaunchFlexTemplateParameter{
			JobName:    JobName(date),
			Template:   &dataflowpb.LaunchFlexTemplateParameter_ContainerSpecGcsPath{ContainerSpecGcsPath: d.cfg.TemplatePath},
			Parameters: params,
			Environment: &dataflowpb.FlexTemplateRuntimeEnvironment{
				ServiceAccountEmail:  d.cfg.ServiceAccountEmail,
				TempLocation:         d.cfg.TempLocation,
				StagingLocation:      d.cfg.StagingLocation,
				MaxWorkers:           d.cfg.MaxWorkers,
				Subnetwork:           d.cfg.Subnetwork,
				AdditionalUserLabels: labels,
			},
		},
	}
}

// Lookup returns the latest Dataflow job named for date.
func (d *DataflowLauncher) Lookup(ctx context.Context, date string) (Run, error) {
	if _, err := parseDate(date); err != nil {
		return Run{}, fmt.Errorf("dataflow lookup: %w", err)
	}
	return d.latest(ctx, date)
}

// latest lists the region's jobs named JobName(date) (active and terminated)
// and returns the newest, or ErrNotFound.
func (d *DataflowLauncher) latest(ctx context.Context, date string) (Run, error) {
	name := JobName(date)
	it := d.jobs.ListJobs(ctx, &dataflowpb.ListJobsRequest{
		ProjectId: d.cfg.Project,
		Location:  d.cfg.Region,
		Filter:    dataflowpb.ListJobsRequest_ALL,
		Name:      &name,
		View:      dataflowpb.JobView_JOB_VIEW_SUMMARY,
	})
	var newest *dataflowpb.Job
	for {
		job, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return Run{}, fmt.Errorf("dataflow.ListJobs %s: %w", name, err)
		}
		if job.GetName() != name {
			continue
		}
		if newest == nil || job.GetCreateTime().AsTime().After(newest.GetCreateTime().AsTime()) {
			newest = job
		}
	}
	if newest == nil {
		return Run{}, ErrNotFound
	}
	return runFromJob(date, newest), nil
}

func runFromJob(date string, job *dataflowpb.Job) Run {
	r := Run{
		Date:    date,
		JobID:   job.GetId(),
		JobName: job.GetName(),
		State:   stateOf(job.GetCurrentState()),
		Engine:  "dataflow",
	}
	if t := job.GetCreateTime(); t != nil {
		r.CreatedAt = t.AsTime()
	}
	if t := job.GetCurrentStateTime(); t != nil {
		r.UpdatedAt = t.AsTime()
	}
	return r
}

// stateOf maps Dataflow's job states onto the run's.
func stateOf(s dataflowpb.JobState) State {
	switch s {
	case dataflowpb.JobState_JOB_STATE_DONE:
		return StateDone
	case dataflowpb.JobState_JOB_STATE_FAILED:
		return StateFailed
	case dataflowpb.JobState_JOB_STATE_CANCELLED, dataflowpb.JobState_JOB_STATE_DRAINED,
		dataflowpb.JobState_JOB_STATE_UPDATED:
		return StateCancelled
	case dataflowpb.JobState_JOB_STATE_RUNNING, dataflowpb.JobState_JOB_STATE_DRAINING,
		dataflowpb.JobState_JOB_STATE_CANCELLING, dataflowpb.JobState_JOB_STATE_RESOURCE_CLEANING_UP,
		dataflowpb.JobState_JOB_STATE_PAUSING, dataflowpb.JobState_JOB_STATE_PAUSED:
		return StateRunning
	default: // UNKNOWN, STOPPED (not yet started), PENDING, QUEUED
		return StatePending
	}
}

// isAlreadyExists reports a duplicate job name, over gRPC or REST.
func isAlreadyExists(err error) bool {
	if err == nil {
		return false
	}
	if status.Code(err) == codes.AlreadyExists {
		return true
	}
	var ae *apierror.APIError
	return errors.As(err, &ae) && (ae.HTTPCode() == http.StatusConflict || ae.GRPCStatus().Code() == codes.AlreadyExists)
}
