package warehouse_test

import (
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// TestWriteRowsHealthPrism: the health metrics the streaming job reports
// on Dataflow, where its rows go through WriteRowsHealth: commits, and the
// publish-to-stored latency of every row.
func TestWriteRowsHealthPrism(t *testing.T) {
	dir := t.TempDir()
	ids := eventIDs(1500, "h")
	p, s := beam.NewPipelineWithRoot()
	rows := beam.ParDo(s, eventToRow, beam.CreateList(s, ids))
	warehouse.WriteRowsHealth(s, dir, warehouse.Adjustments, rows, "stream")
	// The oldest a row's latency can be: its publish time until now.
	atLeast := time.Since(*eventToRow("x").PublishTime).Milliseconds()
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	var commits int64
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() == "stream" && c.Name() == warehouse.MetricCommits {
			commits += c.Result()
		}
	}
	var count, minMs int64
	for _, d := range pr.Metrics().AllMetrics().Distributions() {
		if d.Namespace() == "stream" && d.Name() == warehouse.MetricPublishToStoredMs {
			v := d.Result()
			count, minMs = count+v.Count, v.Min
		}
	}
	if commits < 2 || count != int64(len(ids)) || minMs < atLeast {
		t.Errorf("commits %d, latency count %d min %d ms; want at least 2 commits (1000 rows each), %d latencies of at least %d ms",
			commits, count, minMs, len(ids), atLeast)
	}
	checkOnce(t, localEventIDs(t, dir), ids)
}
