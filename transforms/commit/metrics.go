package commit

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// Metric names, namespace "stream". received = applied + duplicates +
// dead_lettered once everything received has been processed.
//
// They are the job's health signals wherever it runs: Dataflow shows them
// as the job's custom counters (and exports the counters to Cloud
// Monitoring as dataflow.googleapis.com/job/user_counter, label
// metric_name), and the local stack reads them from Prism for `inventory
// up`'s status line and /metrics (internal/app/health).
const (
	MetricNamespace    = "stream"
	MetricReceived     = "received"
	MetricApplied      = "applied"
	MetricDuplicates   = "duplicates"
	MetricDeadLettered = "dead_lettered"
	// MetricSuperseded counts the events recorded at or before their
	// key's latest count: accepted but without effect on on-hand. They
	// are part of applied (the ledger accepts them), not a fifth term.
	MetricSuperseded = "superseded"
	// metricAlerts counts the low-stock alert rows stored (every change
	// of severity, recoveries included).
	metricAlerts = warehouse.MetricAlerts
	// metricCommits counts the sink's successful warehouse commits: its
	// rate is the "last successful commit" signal on Dataflow.
	metricCommits = warehouse.MetricCommits
	// metricPublishToStoredMs is a distribution: for every message the
	// sink stored, the milliseconds from its publish time to the end of
	// the warehouse write.
	metricPublishToStoredMs = warehouse.MetricPublishToStoredMs
	// MetricDeadLettersDropped counts dead letters that Pub/Sub refused
	// (or that could not be built): each is logged with its payload's
	// size and SHA-256 and left off the dead-letter topic, its message
	// acked all the same, rather than fail every bundle after it. Its
	// dead_letters row is stored as any other (it is not a fourth term
	// of the reconciliation).
	MetricDeadLettersDropped = "dead_letters_dropped"
	// MetricAcked counts the messages the sink acknowledged once what
	// they caused was stored; MetricAckFailed those whose Acknowledge
	// failed (logged at WARN): Pub/Sub delivers them again, and they are
	// then counted as duplicates.
	MetricAcked     = "acked"
	MetricAckFailed = "ack_failed"
)

// Counts is the reconciliation of a run: Received = Applied + Duplicates +
// DeadLettered once every received message has been processed. Superseded
// (part of Applied), Alerts and Commits are counted besides.
type Counts struct {
	Received, Applied, Duplicates, DeadLettered int64
	Superseded, Alerts, Commits                 int64
}

// Balanced reports whether every received message is accounted for.
func (c Counts) Balanced() bool {
	return c.Received == c.Applied+c.Duplicates+c.DeadLettered
}

// CountsOf sums the stream/* counters of a pipeline result over all steps.
func CountsOf(pr beam.PipelineResult) Counts {
	if pr == nil {
		return Counts{}
	}
	return CountsIn(pr.Metrics())
}

// CountsIn sums the stream/* counters of metric results over all steps
// (committed values where the runner has them, else attempted).
func CountsIn(res metrics.Results) Counts {
	var c Counts
	for _, r := range res.AllMetrics().Counters() {
		if r.Namespace() != MetricNamespace {
			continue
		}
		switch r.Name() {
		case MetricReceived:
			c.Received += r.Result()
		case MetricApplied:
			c.Applied += r.Result()
		case MetricDuplicates:
			c.Duplicates += r.Result()
		case MetricDeadLettered:
			c.DeadLettered += r.Result()
		case MetricSuperseded:
			c.Superseded += r.Result()
		case metricAlerts:
			c.Alerts += r.Result()
		case metricCommits:
			c.Commits += r.Result()
		}
	}
	return c
}
