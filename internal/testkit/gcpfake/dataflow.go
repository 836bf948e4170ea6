package gcpfake

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Dataflow is a fake of the Dataflow API's FlexTemplatesService and
// JobsV1Beta3 services. Like Dataflow, it refuses to launch a job whose name
// an active job in the same project and region already has (ALREADY_EXISTS).
type Dataflow struct {
	dataflowpb.UnimplementedFlexTemplatesServiceServer
	dataflowpb.UnimplementedJobsV1Beta3Server

	mu       sync.Mutex
	jobs     []*dataflowpb.Job
	launches []*dataflowpb.LaunchFlexTemplateRequest
	lists    []*dataflowpb.ListJobsRequest
	// staleLists is how many coming ListJobs calls answer as if no job
	// existed yet: a listing taken before another instance's launch.
	staleLists int
	seq        int
	clock      time.Time
	onLaunch   func(job *dataflowpb.Job, req *dataflowpb.LaunchFlexTemplateRequest)
}

// OnLaunch makes every launch call f, on a goroutine of its own, with the
// job it made (QUEUED) and the request: a stand-in for Dataflow's launcher
// (f runs the job and moves it on with SetState).
func (d *Dataflow) OnLaunch(f func(job *dataflowpb.Job, req *dataflowpb.LaunchFlexTemplateRequest)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onLaunch = f
}

// StartDataflow serves a fake Dataflow API for the test and returns it with
// the client options that reach it.
func StartDataflow(t TB) (*Dataflow, []option.ClientOption) {
	d := &Dataflow{clock: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)}
	opts := serve(t, func(s *grpc.Server) {
		dataflowpb.RegisterFlexTemplatesServiceServer(s, d)
		dataflowpb.RegisterJobsV1Beta3Server(s, d)
	})
	return d, opts
}

// AddJob stores a job as if launched earlier and returns its id.
func (d *Dataflow) AddJob(project, location, name string, state dataflowpb.JobState) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addLocked(project, location, name, state).Id
}

func (d *Dataflow) addLocked(project, location, name string, state dataflowpb.JobState) *dataflowpb.Job {
	d.seq++
	d.clock = d.clock.Add(time.Minute)
	j := &dataflowpb.Job{
		Id:               fmt.Sprintf("%s_fake-%d", d.clock.Format("2006-01-02_15_04_05"), d.seq),
		ProjectId:        project,
		Location:         location,
		Name:             name,
		Type:             dataflowpb.JobType_JOB_TYPE_BATCH,
		CurrentState:     state,
		CurrentStateTime: timestamppb.New(d.clock),
		CreateTime:       timestamppb.New(d.clock),
	}
	d.jobs = append(d.jobs, j)
	return j
}

// SetState moves job id to state.
func (d *Dataflow) SetState(id string, state dataflowpb.JobState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range d.jobs {
		if j.Id == id {
			j.CurrentState = state
		}
	}
}

// StaleLists makes the next n ListJobs calls answer with no jobs.
func (d *Dataflow) StaleLists(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.staleLists = n
}

// Launches returns the LaunchFlexTemplate requests received, in order.
func (d *Dataflow) Launches() []*dataflowpb.LaunchFlexTemplateRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*dataflowpb.LaunchFlexTemplateRequest, len(d.launches))
	for i, r := range d.launches {
		out[i] = proto.Clone(r).(*dataflowpb.LaunchFlexTemplateRequest)
	}
	return out
}

// Lists returns the ListJobs requests received, in order.
func (d *Dataflow) Lists() []*dataflowpb.ListJobsRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*dataflowpb.ListJobsRequest(nil), d.lists...)
}

func active(s dataflowpb.JobState) bool {
	switch s {
	case dataflowpb.JobState_JOB_STATE_DONE, dataflowpb.JobState_JOB_STATE_FAILED,
		dataflowpb.JobState_JOB_STATE_CANCELLED, dataflowpb.JobState_JOB_STATE_UPDATED,
		dataflowpb.JobState_JOB_STATE_DRAINED:
		return false
	}
	return true
}

// LaunchFlexTemplate implements dataflowpb.FlexTemplatesServiceServer.
func (d *Dataflow) LaunchFlexTemplate(_ context.Context, req *dataflowpb.LaunchFlexTemplateRequest) (*dataflowpb.LaunchFlexTemplateResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.launches = append(d.launches, proto.Clone(req).(*dataflowpb.LaunchFlexTemplateRequest))
	p := req.GetLaunchParameter()
	switch {
	case req.GetProjectId() == "" || req.GetLocation() == "":
		return nil, status.Error(codes.InvalidArgument, "project_id and location are required")
	case p.GetJobName() == "":
		return nil, status.Error(codes.InvalidArgument, "launch_parameter.job_name is required")
	case p.GetContainerSpecGcsPath() == "" && p.GetContainerSpec() == nil:
		return nil, status.Error(codes.InvalidArgument, "a container spec is required")
	}
	for _, j := range d.jobs {
		if j.ProjectId == req.ProjectId && j.Location == req.Location && j.Name == p.JobName && active(j.CurrentState) {
			return nil, status.Errorf(codes.AlreadyExists,
				"(%s): There is already an active job named %s with id: %s", j.Id, j.Name, j.Id)
		}
	}
	if req.GetValidateOnly() {
		return &dataflowpb.LaunchFlexTemplateResponse{}, nil
	}
	j := d.addLocked(req.ProjectId, req.Location, p.JobName, dataflowpb.JobState_JOB_STATE_QUEUED)
	if d.onLaunch != nil {
		go d.onLaunch(proto.Clone(j).(*dataflowpb.Job), proto.Clone(req).(*dataflowpb.LaunchFlexTemplateRequest))
	}
	return &dataflowpb.LaunchFlexTemplateResponse{Job: &dataflowpb.Job{
		Id: j.Id, ProjectId: j.ProjectId, Location: j.Location, Name: j.Name,
	}}, nil
}

// ListJobs implements dataflowpb.JobsV1Beta3Server, with filter, name and
// paging.
func (d *Dataflow) ListJobs(_ context.Context, req *dataflowpb.ListJobsRequest) (*dataflowpb.ListJobsResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lists = append(d.lists, proto.Clone(req).(*dataflowpb.ListJobsRequest))
	if req.GetProjectId() == "" {
		return nil, status.Error(codes.InvalidArgument, "project_id is required")
	}
	if d.staleLists > 0 {
		d.staleLists--
		return &dataflowpb.ListJobsResponse{}, nil
	}
	var match []*dataflowpb.Job
	for i := len(d.jobs) - 1; i >= 0; i-- { // newest first, as Dataflow lists
		j := d.jobs[i]
		if j.ProjectId != req.ProjectId || (req.Location != "" && j.Location != req.Location) {
			continue
		}
		if req.Name != nil && j.Name != req.GetName() {
			continue
		}
		switch req.GetFilter() {
		case dataflowpb.ListJobsRequest_ACTIVE:
			if !active(j.CurrentState) {
				continue
			}
		case dataflowpb.ListJobsRequest_TERMINATED:
			if active(j.CurrentState) {
				continue
			}
		}
		match = append(match, proto.Clone(j).(*dataflowpb.Job))
	}
	start := 0
	if req.PageToken != "" {
		n, err := strconv.Atoi(req.PageToken)
		if err != nil || n < 0 || n > len(match) {
			return nil, status.Error(codes.InvalidArgument, "bad page token")
		}
		start = n
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 2 { // small pages, so clients must page
		size = 2
	}
	end := min(start+size, len(match))
	resp := &dataflowpb.ListJobsResponse{Jobs: match[start:end]}
	if end < len(match) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// GetJob implements dataflowpb.JobsV1Beta3Server.
func (d *Dataflow) GetJob(_ context.Context, req *dataflowpb.GetJobRequest) (*dataflowpb.Job, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, j := range d.jobs {
		if j.Id == req.GetJobId() && j.ProjectId == req.GetProjectId() {
			return proto.Clone(j).(*dataflowpb.Job), nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "job %s not found", req.GetJobId())
}
