package commit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	beam.RegisterType(reflect.TypeOf(Commit{}))
	beam.RegisterCoder(reflect.TypeOf(Commit{}), encodeCommit, decodeCommit)
	register.DoFn3x1[context.Context, Commit, func(int, int), error](&commitFn{})
	register.Emitter2[int, int]()
	register.DoFn5x0[Commit, func(warehouse.AdjustmentRow), func(warehouse.StockLevelRow), func(warehouse.AlertRow), func(warehouse.DeadLetterRow)](&unpackFn{})
	register.Emitter1[warehouse.AdjustmentRow]()
	register.Emitter1[warehouse.StockLevelRow]()
	register.Emitter1[warehouse.AlertRow]()
	register.Emitter1[warehouse.DeadLetterRow]()
}

// Commit is everything one element of the job produced from a set of
// messages, and the ack ids of those messages: the unit that Write
// stores, publishes and then acknowledges, so that a message is acked only
// once all it caused is durable.
type Commit struct {
	Adjustments []warehouse.AdjustmentRow `json:"a,omitempty"`
	Levels      []warehouse.StockLevelRow `json:"l,omitempty"`
	Alerts      []warehouse.AlertRow      `json:"x,omitempty"`
	DeadLetters []warehouse.DeadLetterRow `json:"d,omitempty"`
	Acks        []string                  `json:"k,omitempty"`
	// ThresholdChanges and ThresholdAcks are the threshold changes
	// received (threshold_changes rows) and the ack ids of their messages
	// on the threshold-updates subscription.
	ThresholdChanges []warehouse.ThresholdChangeRow `json:"t,omitempty"`
	ThresholdAcks    []string                       `json:"tk,omitempty"`
}

// Merge appends o's rows and acks to c.
func (c *Commit) Merge(o *Commit) {
	c.Adjustments = append(c.Adjustments, o.Adjustments...)
	c.Levels = append(c.Levels, o.Levels...)
	c.Alerts = append(c.Alerts, o.Alerts...)
	c.DeadLetters = append(c.DeadLetters, o.DeadLetters...)
	c.Acks = append(c.Acks, o.Acks...)
	c.ThresholdChanges = append(c.ThresholdChanges, o.ThresholdChanges...)
	c.ThresholdAcks = append(c.ThresholdAcks, o.ThresholdAcks...)
}

func (c *Commit) rows() int {
	return len(c.Adjustments) + len(c.Levels) + len(c.Alerts) + len(c.DeadLetters) + len(c.ThresholdChanges)
}

func encodeCommit(c Commit) ([]byte, error) { return json.Marshal(c) }

func decodeCommit(b []byte) (Commit, error) {
	var c Commit
	err := json.Unmarshal(b, &c)
	return c, err
}

// Rows are the outputs of the job as one PCollection per table.
type Rows struct {
	Adjustments beam.PCollection // warehouse.AdjustmentRow: every event, APPLIED/SUPERSEDED/DUPLICATE
	Levels      beam.PCollection // warehouse.StockLevelRow: every change of on-hand
	Alerts      beam.PCollection // warehouse.AlertRow: every change of severity
	DeadLetters beam.PCollection // warehouse.DeadLetterRow: invalid and too-late events
}

// Unpack is a composite transform that splits a PCollection of Commit into
// its rows, one PCollection per table (ack ids are dropped: use it where the
// source acks by itself, or for tests).
func Unpack(s beam.Scope, commits beam.PCollection) Rows {
	s = s.Scope("commit.Unpack")
	adj, lvl, alerts, dead := beam.ParDo4(s, &unpackFn{}, commits)
	return Rows{Adjustments: adj, Levels: lvl, Alerts: alerts, DeadLetters: dead}
}

type unpackFn struct{}

func (unpackFn) ProcessElement(c Commit, adj func(warehouse.AdjustmentRow), lvl func(warehouse.StockLevelRow),
	alert func(warehouse.AlertRow), dead func(warehouse.DeadLetterRow)) {
	for _, r := range c.Adjustments {
		adj(r)
	}
	for _, r := range c.Levels {
		lvl(r)
	}
	for _, r := range c.Alerts {
		alert(r)
	}
	for _, r := range c.DeadLetters {
		dead(r)
	}
}

// Options configures Write.
type Options struct {
	// Warehouse is a local directory or bq://PROJECT.DATASET.
	Warehouse string
	// Project and Subscription name where the ack ids come from ("": no
	// acks, as for a CSV replay).
	Project      string
	Subscription string
	// ThresholdSubscription is where the ack ids of threshold changes
	// come from ("": none).
	ThresholdSubscription string
	// AlertTopic and DeadLetterTopic receive alerts and dead letters ("":
	// not published); AlertEncoding is the alert topic's schema encoding.
	AlertTopic      string
	AlertEncoding   string
	DeadLetterTopic string
	// BatchRows stores what is buffered once it holds this many rows
	// (DefaultBatchRows); a bundle's end always stores.
	BatchRows int
	// Flight is the ID of the pubsubio.Flight whose sources emitted the
	// messages ("": the process's default): the sink tells it what is
	// stored, which ends the messages' leases and lets a drain finish.
	Flight string
}

// Write is a composite transform that makes the job's outputs
// durable and then acknowledges the messages they came from. For what a
// bundle buffered it, in this order:
//
//  1. publishes the alerts and dead letters to their topics and waits for
//     Pub/Sub to take them (at least once: a crash after this step publishes
//     them again, with the same alert_id);
//  2. writes dead_letters, stock_levels, low_stock_alerts and adjustments
//     with warehouse.WriteAll: one transaction in the local warehouse;
//     adjustments last in BigQuery, since the restore at start
//     (ReadReference with a warehouse) rebuilds stock from them;
//  3. acknowledges the messages.
//
// A batch (BatchRows rows, or what a bundle ends with) is stored by a
// goroutine while the bundle's next elements are processed, one batch at a
// time and in order; the bundle ends only once all of its batches are
// stored and acked, and an error fails the bundle.
//
// A crash at any point leaves the messages unacked, so Pub/Sub delivers them
// again; the restored ledgers see those already stored as duplicates.
func Write(s beam.Scope, commits beam.PCollection, o Options) {
	s = s.Scope("commit.Write")
	endStage(s, beam.ParDo(s, &commitFn{Opts: o}, commits))
}

// DefaultBatchRows is the default of Options.BatchRows: about the rows of
// one source batch under a backlog (pubsubio.DefaultMaxMessages events, an
// adjustment and mostly a stock level each), so that a busy job stores a
// bundle in one or two warehouse transactions. Every transaction costs
// the same whatever it holds (a file per table in the local warehouse,
// created, synced and renamed); with batches of 2,000 rows the job ran
// 12-17% slower under a backlog and no faster at 20,000 events/s
// (docs/benchmarks.md, "Fifth step"). An idle job stores each bundle at its
// end, whatever its size.
const DefaultBatchRows = 16_000

// endStage consumes a sink's (empty) output in a stage of its own, so that
// the sink's stage has an output.
//
// Prism (Beam v2.77.0) waits for a bundle in a select loop over the
// bundle's response and a channel closed once every output of the stage has
// ended. A stage with no outputs has that channel closed from the start, so
// the loop spins on it for the whole bundle: one core busy per bundle in
// flight (half of the job's CPU in streambench, most of it for nothing).
// With an output, the channel closes only at the bundle's end. The sink
// emits nothing, and the GroupByKey receives nothing and holds nothing.
// Upstream report: docs/beam-notes.md#upstream-issues-ready-to-file, item 1.
func endStage(s beam.Scope, out beam.PCollection) {
	beam.GroupByKey(s.Scope("EndStage"), out)
}

type commitFn struct {
	Opts Options

	flight   *pubsubio.Flight
	w        warehouse.Writer
	client   *pubsub.Client
	alerts   *pubsub.Publisher
	dead     *pubsub.Publisher
	buf      []Commit
	buffered int
	stored   beam.Counter
	acked    beam.Counter
	ackFail  beam.Counter
	dropped  beam.Counter
	alertsN  beam.Counter
	commits  beam.Counter
	latency  beam.Distribution
	// inflight is the result of the batch being stored in the background
	// (nil when none is): see flush.
	inflight chan flushResult
}

// flushResult is what storing one batch did.
type flushResult struct {
	rows, acks, ackFailed, dropped, alerts int
	// latencies are the publish-to-stored milliseconds of the messages
	// stored (those with a publish time).
	latencies []int64
	err       error
}

func (f *commitFn) Setup(ctx context.Context) error {
	fl, err := pubsubio.LookupFlight(f.Opts.Flight)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	f.flight = fl
	w, err := warehouse.Open(ctx, f.Opts.Warehouse)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	f.w = w
	if f.Opts.BatchRows <= 0 {
		f.Opts.BatchRows = DefaultBatchRows
	}
	if f.Opts.Subscription != "" || f.Opts.ThresholdSubscription != "" || f.Opts.AlertTopic != "" || f.Opts.DeadLetterTopic != "" {
		if f.client, err = pubsubio.NewClient(ctx, f.Opts.Project); err != nil {
			return err
		}
		if f.Opts.AlertTopic != "" {
			f.alerts = f.client.Publisher(pubsubio.TopicPath(f.Opts.Project, f.Opts.AlertTopic))
		}
		if f.Opts.DeadLetterTopic != "" {
			f.dead = f.client.Publisher(pubsubio.TopicPath(f.Opts.Project, f.Opts.DeadLetterTopic))
		}
	}
	f.stored = beam.NewCounter(MetricNamespace, "rows_stored")
	f.acked = beam.NewCounter(MetricNamespace, MetricAcked)
	f.ackFail = beam.NewCounter(MetricNamespace, MetricAckFailed)
	f.dropped = beam.NewCounter(MetricNamespace, MetricDeadLettersDropped)
	f.alertsN = beam.NewCounter(MetricNamespace, metricAlerts)
	f.commits = beam.NewCounter(MetricNamespace, metricCommits)
	f.latency = beam.NewDistribution(MetricNamespace, metricPublishToStoredMs)
	return nil
}

// ProcessElement buffers c, and hands the buffer to the background store
// once it holds BatchRows rows. The emitter is never called: see endStage.
func (f *commitFn) ProcessElement(ctx context.Context, c Commit, _ func(int, int)) error {
	f.buf = append(f.buf, c)
	f.buffered += c.rows()
	if f.buffered >= f.Opts.BatchRows {
		return f.flush(ctx)
	}
	return nil
}

// FinishBundle stores what is buffered and waits for every store of the
// bundle: a bundle ends once all it caused is stored and acked.
func (f *commitFn) FinishBundle(ctx context.Context, _ func(int, int)) error {
	if err := f.flush(ctx); err != nil {
		return err
	}
	return f.wait(ctx)
}

// flush hands what is buffered to a goroutine that stores and acks it, so
// that the bundle's elements go on being processed meanwhile (storing is a
// fifth of the stream's time per event). It first waits for the batch before,
// so batches are stored one at a time and in order; an error of the batch
// before fails this call, and so the bundle.
func (f *commitFn) flush(ctx context.Context) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	if len(f.buf) == 0 {
		return nil
	}
	var all Commit
	for i := range f.buf {
		all.Merge(&f.buf[i])
	}
	clear(f.buf)
	f.buf, f.buffered = f.buf[:0], 0
	done := make(chan flushResult, 1)
	f.inflight = done
	go func() { done <- f.store(ctx, &all) }()
	return nil
}

// wait waits for the batch being stored, if any, and counts what it stored.
func (f *commitFn) wait(ctx context.Context) error {
	if f.inflight == nil {
		return nil
	}
	r := <-f.inflight
	f.inflight = nil
	f.stored.Inc(ctx, int64(r.rows))
	f.acked.Inc(ctx, int64(r.acks))
	f.ackFail.Inc(ctx, int64(r.ackFailed))
	f.dropped.Inc(ctx, int64(r.dropped))
	if r.err == nil && r.rows > 0 {
		f.commits.Inc(ctx, 1)
		f.alertsN.Inc(ctx, int64(r.alerts))
		for _, ms := range r.latencies {
			f.latency.Update(ctx, ms)
		}
	}
	return r.err
}

// store publishes the alerts and dead letters of all, stores its rows, then
// acknowledges its messages (see Write for why in this order).
func (f *commitFn) store(ctx context.Context, all *Commit) flushResult {
	dropped, err := f.publish(ctx, all.Alerts, all.DeadLetters)
	if err != nil {
		return flushResult{err: err}
	}
	rejected, err := warehouse.WriteAll(ctx, f.w,
		warehouse.Rows(all.DeadLetters),
		warehouse.Rows(all.Levels),
		warehouse.Rows(all.Alerts),
		warehouse.Rows(all.Adjustments),
		warehouse.Rows(all.ThresholdChanges),
	)
	if err != nil {
		return flushResult{err: fmt.Errorf("commit: store %d rows: %w", all.rows(), err)}
	}
	if len(rejected) > 0 {
		// Already in dead_letters; tell the dead-letter topic too.
		n, err := f.publish(ctx, nil, rejected)
		if err != nil {
			return flushResult{err: err}
		}
		dropped += n
	}
	stored := time.Now()
	r := flushResult{rows: all.rows(), dropped: dropped, alerts: len(all.Alerts), latencies: publishToStored(all, stored)}
	f.flight.Committed(stored, r.latencies)
	f.ackStored(ctx, f.Opts.ThresholdSubscription, all.ThresholdAcks, "threshold changes", &r)
	f.ackStored(ctx, f.Opts.Subscription, all.Acks, "messages", &r)
	return r
}

// ackStored acks the stored messages ids of subscription, tells the
// Flight they are stored, and counts them in r as acked or ack-failed. A
// failed ack is not fatal: the messages (what names them in the log) come
// back and are seen as duplicates.
func (f *commitFn) ackStored(ctx context.Context, subscription string, ids []string, what string, r *flushResult) {
	if len(ids) == 0 {
		return
	}
	acked, err := f.ack(ctx, subscription, ids)
	if err != nil {
		slog.Warn("commit: acknowledge failed; the "+what+" will be redelivered", "subscription", subscription,
			"messages", len(ids)-acked, "err", err)
	}
	f.flight.Stored(ids)
	r.acks += acked
	r.ackFailed += len(ids) - acked
}

// publishToStored returns the milliseconds from publish to stored of the
// messages of all that have a publish time: its adjustments (every event
// the ledgers saw) and its dead letters.
func publishToStored(all *Commit, stored time.Time) []int64 {
	var ms []int64
	add := func(pt *time.Time) {
		if pt != nil && !pt.IsZero() {
			ms = append(ms, max(stored.Sub(*pt).Milliseconds(), 0))
		}
	}
	for i := range all.Adjustments {
		add(all.Adjustments[i].PublishTime)
	}
	for i := range all.DeadLetters {
		add(all.DeadLetters[i].PublishTime)
	}
	return ms
}

// publish publishes alerts and dead letters and waits for Pub/Sub to take
// them. A dead letter that cannot be published at all (refused as invalid
// or too large, which a retry cannot change) is logged and counted
// (MetricDeadLettersDropped) and the rest goes on: its dead_letters row is
// stored all the same, and one message must never fail every bundle after
// it. Any other failure fails the batch, which is retried. It returns the
// number of dead letters dropped.
func (f *commitFn) publish(ctx context.Context, alerts []warehouse.AlertRow, dead []warehouse.DeadLetterRow) (dropped int, err error) {
	var pending []*pubsub.PublishResult
	if f.alerts != nil {
		for _, r := range alerts {
			data, attrs, err := alertMessage(r, f.Opts.AlertEncoding)
			if err != nil {
				return 0, err
			}
			pending = append(pending, f.alerts.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}))
		}
	}
	type deadResult struct {
		row *warehouse.DeadLetterRow
		res *pubsub.PublishResult
	}
	var deadPending []deadResult
	if f.dead != nil {
		for i := range dead {
			data, attrs, err := deadLetterMessage(dead[i])
			if err != nil {
				logDropped(ctx, dead[i], err)
				dropped++
				continue
			}
			deadPending = append(deadPending, deadResult{&dead[i], f.dead.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs})})
		}
	}
	// Send now rather than after the publishers' batching delay (10 ms):
	// the bundle is complete, and the store and the ack wait on this.
	if len(pending) > 0 {
		f.alerts.Flush()
	}
	if len(deadPending) > 0 {
		f.dead.Flush()
	}
	for _, p := range pending {
		if _, err := p.Get(ctx); err != nil {
			return 0, fmt.Errorf("commit: publish: %w", err)
		}
	}
	for _, p := range deadPending {
		if _, err := p.res.Get(ctx); err != nil {
			if !refused(err) {
				return 0, fmt.Errorf("commit: publish dead letter: %w", err)
			}
			logDropped(ctx, *p.row, err)
			dropped++
		}
	}
	return dropped, nil
}

// refused reports whether a publish failed for good: Pub/Sub (or the
// official publisher, before sending) refused the message itself.
func refused(err error) bool {
	return errors.Is(err, pubsub.ErrOversizedMessage) || errors.Is(err, event.ErrDeadLetterTooLarge) ||
		status.Code(err) == codes.InvalidArgument
}

// ack acknowledges ids on subscription in requests of pubsubio.InAckChunks's
// size, each tried even after one failed, and returns how many were acked
// and the first error.
func (f *commitFn) ack(ctx context.Context, subscription string, ids []string) (acked int, err error) {
	sub := pubsubio.SubscriptionPath(f.Opts.Project, subscription)
	// The callback never fails, so that InAckChunks goes on to the next
	// part after a failed one.
	_ = pubsubio.InAckChunks(ids, func(part []string) error {
		if aerr := f.client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{
			Subscription: sub, AckIds: part}); aerr != nil {
			if err == nil {
				err = fmt.Errorf("pubsub acknowledge: %w", aerr)
			}
			return nil
		}
		acked += len(part)
		return nil
	})
	return acked, err
}

func (f *commitFn) Teardown() error {
	if f.inflight != nil {
		<-f.inflight // a failed bundle's last batch: let it end before closing its clients
	}
	for _, p := range []*pubsub.Publisher{f.alerts, f.dead} {
		if p != nil {
			p.Stop()
		}
	}
	var err error
	if f.client != nil {
		err = f.client.Close()
	}
	if f.w != nil {
		if cerr := f.w.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
