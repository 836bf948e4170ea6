package gcpfake

import (
	"context"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Scheduler is a fake of Cloud Scheduler v1's job methods. Like the service,
// it stores created jobs ENABLED, adds a User-Agent header to HTTP targets,
// and applies an update's field mask.
type Scheduler struct {
	schedulerpb.UnimplementedCloudSchedulerServer

	mu      sync.Mutex
	jobs    map[string]*schedulerpb.Job
	creates []*schedulerpb.CreateJobRequest
	updates []*schedulerpb.UpdateJobRequest
}

// StartScheduler serves a fake Cloud Scheduler for the test and returns it
// with the client options that reach it.
func StartScheduler(t TB) (*Scheduler, []option.ClientOption) {
	s := &Scheduler{jobs: map[string]*schedulerpb.Job{}}
	opts := serve(t, func(g *grpc.Server) { schedulerpb.RegisterCloudSchedulerServer(g, s) })
	return s, opts
}

// Job returns a copy of the stored job, or nil.
func (s *Scheduler) Job(name string) *schedulerpb.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[name]; ok {
		return proto.Clone(j).(*schedulerpb.Job)
	}
	return nil
}

// Creates and Updates return the requests received.
func (s *Scheduler) Creates() []*schedulerpb.CreateJobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*schedulerpb.CreateJobRequest(nil), s.creates...)
}

// Updates returns the UpdateJob requests received.
func (s *Scheduler) Updates() []*schedulerpb.UpdateJobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*schedulerpb.UpdateJobRequest(nil), s.updates...)
}

// GetJob implements schedulerpb.CloudSchedulerServer.
func (s *Scheduler) GetJob(_ context.Context, req *schedulerpb.GetJobRequest) (*schedulerpb.Job, error) {
	if j := s.Job(req.GetName()); j != nil {
		return j, nil
	}
	return nil, status.Errorf(codes.NotFound, "Job not found: %s", req.GetName())
}

// CreateJob implements schedulerpb.CloudSchedulerServer.
func (s *Scheduler) CreateJob(_ context.Context, req *schedulerpb.CreateJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creates = append(s.creates, proto.Clone(req).(*schedulerpb.CreateJobRequest))
	j := proto.Clone(req.GetJob()).(*schedulerpb.Job)
	if !strings.HasPrefix(j.GetName(), req.GetParent()+"/jobs/") {
		return nil, status.Errorf(codes.InvalidArgument, "job name %q is not under parent %q", j.GetName(), req.GetParent())
	}
	if j.GetSchedule() == "" {
		return nil, status.Error(codes.InvalidArgument, "schedule is required")
	}
	if _, ok := s.jobs[j.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Job %s already exists", j.Name)
	}
	j.State = schedulerpb.Job_ENABLED
	j.UserUpdateTime = timestamppb.New(time.Now())
	if h := j.GetHttpTarget(); h != nil {
		if h.Headers == nil {
			h.Headers = map[string]string{}
		}
		h.Headers["User-Agent"] = "Google-Cloud-Scheduler"
	}
	s.jobs[j.Name] = j
	return proto.Clone(j).(*schedulerpb.Job), nil
}

// UpdateJob implements schedulerpb.CloudSchedulerServer for the mask paths
// description, schedule, time_zone, http_target, retry_config and
// attempt_deadline.
func (s *Scheduler) UpdateJob(_ context.Context, req *schedulerpb.UpdateJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = append(s.updates, proto.Clone(req).(*schedulerpb.UpdateJobRequest))
	in := req.GetJob()
	j, ok := s.jobs[in.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Job not found: %s", in.GetName())
	}
	if len(req.GetUpdateMask().GetPaths()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask is required by this fake")
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "description":
			j.Description = in.Description
		case "schedule":
			j.Schedule = in.Schedule
		case "time_zone":
			j.TimeZone = in.TimeZone
		case "http_target":
			h := proto.Clone(in.GetHttpTarget()).(*schedulerpb.HttpTarget)
			if h.Headers == nil {
				h.Headers = map[string]string{}
			}
			h.Headers["User-Agent"] = "Google-Cloud-Scheduler"
			j.Target = &schedulerpb.Job_HttpTarget{HttpTarget: h}
		case "retry_config":
			j.RetryConfig = proto.Clone(in.GetRetryConfig()).(*schedulerpb.RetryConfig)
		case "attempt_deadline":
			j.AttemptDeadline = in.AttemptDeadline
		default:
			return nil, status.Errorf(codes.InvalidArgument, "unsupported update path %q", p)
		}
	}
	j.UserUpdateTime = timestamppb.New(time.Now())
	return proto.Clone(j).(*schedulerpb.Job), nil
}

// SetJob stores j as is (a job changed by hand in the console).
func (s *Scheduler) SetJob(j *schedulerpb.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[j.GetName()] = proto.Clone(j).(*schedulerpb.Job)
}
