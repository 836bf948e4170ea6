package localstack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/metricsx"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"

	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/pipelines/stream"
	"github.com/inventory-events/inventory/reports/trigger"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// latencyWindow is how far back the status line's latency percentiles look.
const latencyWindow = time.Minute

// prober reads the stack's health signals (health.Reading): the stream
// job's Beam metrics from Prism's job service (the same counters Dataflow
// shows), the events subscription's backlog from the local Pub/Sub, the
// sink's commits from the job's Flight, and the last nightly run from the
// trigger's local launcher.
type prober struct {
	s *Stack

	mu       sync.Mutex
	conn     *grpc.ClientConn
	pipeline *pipepb.Pipeline
}

func (p *prober) read(ctx context.Context) (health.Reading, error) {
	var r health.Reading
	s := p.s
	st, err := s.Emulator.SubscriptionStats(pubsubio.SubscriptionPath(s.cfg.Project, stream.DefaultSubscription))
	if err != nil {
		return r, err
	}
	r.Backlog, r.Oldest = st.Undelivered, st.OldestUnacked
	if s.launcher != nil {
		if run, ok := s.launcher.Latest(); ok {
			r.LastNightly = nightlyRun(run)
		}
	}
	if ended, err := s.Stream.Ended(); ended {
		r.StreamDown = "ended"
		if err != nil {
			r.StreamDown = "failed: " + rootCause(err)
		}
	}
	cs := s.Stream.flight.Commits(time.Now().Add(-latencyWindow))
	r.LastCommit, r.LatencyP50, r.LatencyP99 = cs.Last, cs.P50, cs.P99
	c, err := p.counts(ctx)
	if err != nil {
		if r.StreamDown != "" {
			return r, nil // Prism may have forgotten the job
		}
		return r, err
	}
	r.Received, r.Applied, r.Duplicate, r.Superseded, r.DeadLettered, r.Alerts =
		c.Received, c.Applied, c.Duplicates, c.Superseded, c.DeadLettered, c.Alerts
	return r, nil
}

// counts reads the stream job's stream/* counters from Prism.
func (p *prober) counts(ctx context.Context) (commit.Counts, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		conn, err := dial()
		if err != nil {
			return commit.Counts{}, err
		}
		p.conn = conn
	}
	js := jobpb.NewJobServiceClient(p.conn)
	id := p.s.Stream.id
	if p.pipeline == nil {
		resp, err := js.GetPipeline(ctx, &jobpb.GetJobPipelineRequest{JobId: id})
		if err != nil {
			return commit.Counts{}, fmt.Errorf("stream job's pipeline: %w", err)
		}
		p.pipeline = resp.GetPipeline()
	}
	resp, err := js.GetJobMetrics(ctx, &jobpb.GetJobMetricsRequest{JobId: id})
	if err != nil {
		return commit.Counts{}, fmt.Errorf("stream job's metrics: %w", err)
	}
	m := resp.GetMetrics()
	return commit.CountsIn(*metricsx.FromMonitoringInfos(p.pipeline, m.GetAttempted(), m.GetCommitted())), nil
}

func (p *prober) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// rootCause is the last line of a job's error: Prism's error of a failed
// bundle is the whole plan of the bundle's stage, then the DoFn's error.
func rootCause(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// nightlyRun is a trigger run as a health signal.
func nightlyRun(r trigger.Run) health.NightlyRun {
	n := health.NightlyRun{Date: r.Date, Detail: r.Result}
	switch r.State {
	case trigger.StateDone:
		n.State = "succeeded"
	case trigger.StateFailed:
		n.State, n.Detail = "failed", r.Error
	case trigger.StateCancelled:
		n.State, n.Detail = "cancelled", r.Error
	case trigger.StateRunning:
		n.State = "running"
	default:
		n.State = "pending"
	}
	if !r.State.Active() {
		n.Finished = r.UpdatedAt
	}
	return n
}

// startHealth starts the stack's health monitor.
func (s *Stack) startHealth() {
	p := &prober{s: s}
	s.Health = health.NewMonitor(p.read, health.MonitorOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Health.Run(ctx)
	}()
	s.stopHealth = func() {
		cancel()
		<-done
		p.close()
	}
}
