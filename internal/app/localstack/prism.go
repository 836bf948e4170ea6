package localstack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inventory-events/inventory/pipelines/stream"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// StreamJob is the streaming job running on Prism in this process.
type StreamJob struct {
	id     string
	done   chan error
	flight *pubsubio.Flight // what the job's sources have in flight

	mu    sync.Mutex
	ended bool  // the job has ended
	err   error // why
}

// startStream builds the streaming job and starts it on Prism (in-process,
// loopback workers). It returns once Prism reports the job running.
func startStream(ctx context.Context, cfg stream.Config) (*StreamJob, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("localstack: stream: %w", err)
	}
	if !beam.Initialized() {
		beam.Init()
	}
	before, _ := jobIDs(ctx)
	j := &StreamJob{done: make(chan error, 1), flight: pubsubio.NewFlight()}
	cfg.Flight = j.flight.ID()
	p, s := beam.NewPipelineWithRoot()
	stream.Build(s, cfg)
	go func() {
		_, err := stream.RunPrism(context.WithoutCancel(ctx), p)
		j.flight.Close()
		j.mu.Lock()
		j.ended, j.err = true, err
		j.mu.Unlock()
		j.done <- err
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-j.done:
			return nil, fmt.Errorf("localstack: stream job ended at start: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		ids, err := jobIDs(ctx)
		if err != nil {
			continue // Prism still starting
		}
		for id, state := range ids {
			if _, old := before[id]; !old && state == jobpb.JobState_RUNNING {
				j.id = id
				return j, nil
			}
		}
	}
	return nil, errors.New("localstack: the stream job did not start within 2 minutes")
}

// Done is closed when the job ends; Err then says why.
func (j *StreamJob) Done() <-chan error { return j.done }

// Ended reports whether the job has ended, and why.
func (j *StreamJob) Ended() (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.ended, j.err
}

// drain pauses the job's Pub/Sub sources and waits until every message they
// emitted is stored and acked (pubsubio.Flight.Drain), so that cancelling
// the job afterwards loses nothing.
func (j *StreamJob) drain(ctx context.Context) error {
	return j.flight.Drain(ctx)
}

// stop cancels the job and waits for it to end. Call drain first to lose
// nothing in flight.
func (j *StreamJob) stop(ctx context.Context) error {
	conn, err := dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	js := jobpb.NewJobServiceClient(conn)
	if _, err := js.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.id}); err != nil {
		return fmt.Errorf("localstack: cancel stream job: %w", err)
	}
	select {
	case err := <-j.done:
		if err != nil && !strings.Contains(strings.ToUpper(err.Error()), "CANCEL") {
			return fmt.Errorf("localstack: stream job: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("localstack: stream job did not stop: %w", ctx.Err())
	}
}

func dial() (*grpc.ClientConn, error) {
	ep := *jobopts.Endpoint
	if ep == "" {
		return nil, errors.New("localstack: Prism is not running")
	}
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("localstack: dial Prism: %w", err)
	}
	return conn, nil
}

// jobIDs returns the jobs Prism knows, with their states.
func jobIDs(ctx context.Context) (map[string]jobpb.JobState_Enum, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := jobpb.NewJobServiceClient(conn).GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]jobpb.JobState_Enum{}
	for _, ji := range resp.GetJobInfo() {
		out[ji.GetJobId()] = ji.GetState()
	}
	return out, nil
}
