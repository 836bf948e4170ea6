package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn3x1[context.Context, beam.T, func(DeadLetterRow), error](&writeFn{})
	register.Emitter1[DeadLetterRow]()
}

// WriteRows is a composite transform that writes rows to table of the
// warehouse at uri (a local directory or bq://PROJECT.DATASET). It expects a
// PCollection of the table's row type (e.g. AdjustmentRow for adjustments)
// in any windowing, bounded or unbounded, and returns a PCollection of
// DeadLetterRow: the rows the warehouse rejected, which are already stored
// in dead_letters (do not write them there again).
//
// Rows are buffered per bundle and flushed when the buffer is full and in
// FinishBundle; there is no GroupByKey, so it works on an unbounded input in
// the global window. A failed flush fails the bundle and the runner retries
// it: delivery is at-least-once.
func WriteRows(s beam.Scope, uri, table string, rows beam.PCollection) beam.PCollection {
	return writeRows(s, uri, table, rows, "")
}

// The health metrics of the streaming job's sinks, in the namespace the
// job names (transforms/commit.MetricNamespace): the sink that stores a
// bundle in one transaction off Dataflow (transforms/commit) and, on
// Dataflow, WriteRowsHealth report them by these names.
const (
	// MetricCommits counts successful warehouse writes of adjustments.
	MetricCommits = "commits"
	// MetricPublishToStoredMs is a distribution: per stored event, the
	// milliseconds from its publish time to the end of the write.
	MetricPublishToStoredMs = "publish_to_stored_ms"
	// MetricAlerts counts the low_stock_alerts rows stored.
	MetricAlerts = "alerts"
)

// WriteRowsHealth is WriteRows that also reports the health metrics of a
// streaming sink in the namespace ns: for adjustments MetricCommits and
// MetricPublishToStoredMs, for low_stock_alerts MetricAlerts.
func WriteRowsHealth(s beam.Scope, uri, table string, rows beam.PCollection, ns string) beam.PCollection {
	return writeRows(s, uri, table, rows, ns)
}

func writeRows(s beam.Scope, uri, table string, rows beam.PCollection, health string) beam.PCollection {
	s = s.Scope("warehouse.WriteRows." + table)
	t, err := TableByName(table)
	if err != nil {
		panic(err)
	}
	if got := rows.Type().Type(); got != t.RowType {
		panic(fmt.Sprintf("warehouse.WriteRows: table %s takes %v, got PCollection<%v>", table, t.RowType, got))
	}
	return beam.ParDo(s, &writeFn{URI: uri, Table: table, Health: health}, rows)
}

// writeFn writes the elements of a bundle to one table.
type writeFn struct {
	URI   string
	Table string
	// BatchRows flushes the buffer when it holds this many rows (default 1000).
	BatchRows int
	// Health is the namespace of the health metrics ("": none; see
	// WriteRowsHealth).
	Health string

	w       Writer
	buf     []any
	written beam.Counter
	rejects beam.Counter
	flushes beam.Counter
	// permanent counts the flushes a TableError failed.
	permanent beam.Counter
	commits   beam.Counter
	alerts    beam.Counter
	latency   beam.Distribution
}

func (f *writeFn) Setup(ctx context.Context) error {
	w, err := Open(ctx, f.URI)
	if err != nil {
		return err
	}
	f.w = w
	if f.BatchRows <= 0 {
		f.BatchRows = 1000
	}
	f.written = beam.NewCounter("warehouse", "rows_written_"+f.Table)
	f.rejects = beam.NewCounter("warehouse", "rows_rejected_"+f.Table)
	f.flushes = beam.NewCounter("warehouse", "flushes_"+f.Table)
	f.permanent = beam.NewCounter("warehouse", "permanent_errors_"+f.Table)
	if f.Health != "" {
		f.commits = beam.NewCounter(f.Health, MetricCommits)
		f.alerts = beam.NewCounter(f.Health, MetricAlerts)
		f.latency = beam.NewDistribution(f.Health, MetricPublishToStoredMs)
	}
	return nil
}

// StartBundle takes the emitter only because Beam wants the same emitters
// in StartBundle, ProcessElement and FinishBundle.
func (f *writeFn) StartBundle(_ context.Context, _ func(DeadLetterRow)) {
	f.buf = f.buf[:0]
}

func (f *writeFn) ProcessElement(ctx context.Context, row beam.T, emit func(DeadLetterRow)) error {
	f.buf = append(f.buf, row)
	if len(f.buf) >= f.BatchRows {
		return f.flush(ctx, emit)
	}
	return nil
}

func (f *writeFn) FinishBundle(ctx context.Context, emit func(DeadLetterRow)) error {
	return f.flush(ctx, emit)
}

func (f *writeFn) flush(ctx context.Context, emit func(DeadLetterRow)) error {
	if len(f.buf) == 0 {
		return nil
	}
	n := int64(len(f.buf))
	rows, err := AnyRows(f.Table, f.buf)
	if err != nil {
		return err
	}
	rejected, err := f.w.Write(ctx, rows)
	if err != nil {
		var te *TableError
		if errors.As(err, &te) {
			// Not one bad row: the table refuses every write. The bundle
			// fails and the runner retries it until the fix is made; say so
			// loudly each time, never silently.
			f.permanent.Inc(ctx, 1)
			slog.ErrorContext(ctx, "warehouse: the table refuses every write; the bundle is retried until it is fixed",
				"table", te.Table, "problem", te.Problem, "fix", te.Fix, "error", te.Err)
		}
		return err
	}
	if f.Health != "" {
		f.countHealth(ctx, int64(len(rejected)))
	}
	clear(f.buf)
	f.buf = f.buf[:0]
	f.flushes.Inc(ctx, 1)
	f.written.Inc(ctx, n-int64(len(rejected)))
	f.rejects.Inc(ctx, int64(len(rejected)))
	for _, r := range rejected {
		emit(r)
	}
	return nil
}

// countHealth reports the health metrics of a successful write of f.buf,
// of which rejected rows went to dead_letters.
func (f *writeFn) countHealth(ctx context.Context, rejected int64) {
	switch f.Table {
	case Adjustments:
		f.commits.Inc(ctx, 1)
		stored := time.Now()
		for _, r := range f.buf {
			if a, ok := r.(AdjustmentRow); ok && a.PublishTime != nil && !a.PublishTime.IsZero() {
				f.latency.Update(ctx, max(stored.Sub(*a.PublishTime).Milliseconds(), 0))
			}
		}
	case LowStockAlerts:
		f.alerts.Inc(ctx, int64(len(f.buf))-rejected)
	}
}

func (f *writeFn) Teardown() error {
	if f.w == nil {
		return nil
	}
	err := f.w.Close()
	f.w = nil
	return err
}
