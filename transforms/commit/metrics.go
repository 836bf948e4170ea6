package commit

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
)

// Metric names, namespace "stream". received = applied + duplicates +
// dead_lettered once everything received has been processed.
const (
	MetricNamespace    = "stream"
	MetricReceived     = "received"
	MetricApplied      = "applied"
	MetricDuplicates   = "duplicates"
	MetricDeadLettered = "dead_lettered"
	// MetricDeadLettersDropped counts dead letters that Pub/Sub refused
	// (or that could not be built): each is logged with its payload's
	// size and SHA-256 and left off the dead-letter topic, its message
	// acked all the same, rather than fail every bundle after it. Its
	// dead_letters row is stored as any other (it is not a fourth term
	// of the reconciliation).
	MetricDeadLettersDropped = "dead_letters_dropped"
)

// Counts is the reconciliation of a run: Received = Applied + Duplicates +
// DeadLettered once every received message has been processed.
type Counts struct {
	Received, Applied, Duplicates, DeadLettered int64
}

// Balanced reports whether every received message is accounted for.
func (c Counts) Balanced() bool {
	return c.Received == c.Applied+c.Duplicates+c.DeadLettered
}

// CountsOf sums the stream/* counters of a pipeline result over all steps.
func CountsOf(pr beam.PipelineResult) Counts {
	var c Counts
	if pr == nil {
		return c
	}
	for _, r := range pr.Metrics().AllMetrics().Counters() {
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
		}
	}
	return c
}
