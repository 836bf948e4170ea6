// Package stream is the inventory streaming job: Pub/Sub adjustments (or a
// CSV replay) -> decode and validate -> per-key stock in Beam state ->
// low-stock alerts to a topic and the warehouse, with every adjustment, every
// change of on-hand and every dead letter in the warehouse too.
//
// The same Build runs on Prism (the project's Pub/Sub source, a splittable
// DoFn, and a publishing DoFn) and on Dataflow (the native Pub/Sub read and
// write).
package stream

import (
	"fmt"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/pipelines/launch"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/csvsrc"
	"github.com/inventory-events/inventory/transforms/pubsubio"
	"github.com/inventory-events/inventory/transforms/stock"
)

// Default names of the topics and subscription the job uses.
const (
	DefaultSubscription    = names.Subscription
	DefaultAlertTopic      = names.AlertTopic
	DefaultDeadLetterTopic = names.DeadLetterTopic
	DefaultWarehouse       = names.Warehouse
	// DefaultThresholdSubscription is the job's subscription to
	// threshold-updates (inventory thresholds set).
	DefaultThresholdSubscription = names.ThresholdSubscription
)

// Config is the job's configuration; cmd/stream fills it from flags.
type Config struct {
	// Runner is the Beam runner name; "dataflow" selects the native Pub/Sub
	// read and write.
	Runner  string
	Project string
	// Subscription (id or path) is the unbounded input; Input, a CSV of
	// adjustments (local or gs://), is a bounded replay instead. Exactly one.
	Subscription string
	Input        string
	// ThresholdSubscription (optional) is the subscription to
	// threshold-updates: live changes of reorder thresholds, applied
	// without a restart (see the README).
	ThresholdSubscription string
	// Thresholds (CSV, optional) and Snapshot (JSON, optional), local or gs://.
	Thresholds       string
	Snapshot         string
	DefaultThreshold int64
	// AlertTopic and DeadLetterTopic receive alerts and dead letters; empty
	// disables publishing them (the warehouse still gets them).
	AlertTopic      string
	DeadLetterTopic string
	// AlertEncoding is the alert topic's schema encoding, JSON or BINARY.
	AlertEncoding string
	// Warehouse is a local directory or bq://PROJECT.DATASET.
	Warehouse string
	// Shards is how many hash shards of the key space hold stock state.
	Shards int
	// Flight is the ID of a pubsubio.Flight in this process that tracks
	// what the job's Pub/Sub sources emitted, for a drain before a cancel
	// (local runs with in-process workers; "": the process's default).
	Flight string
	// Horizon bounds the dedup memory of a key in event time.
	Horizon time.Duration
	// Pull tunes the Pub/Sub source off Dataflow.
	MaxMessages  int
	MaxBatchWait time.Duration
	PollInterval time.Duration
	// IDAttribute and TimestampAttribute tune the native read on Dataflow.
	IDAttribute        string
	TimestampAttribute string
	// InProcess says the job's workers run in this process (Prism
	// in-process, no --endpoint): the reference data (thresholds, snapshot,
	// restored ledgers) then reaches the stock DoFns in memory rather than
	// as a side input (stock.ReadReferenceInProcess says why). Ignored on
	// Dataflow.
	InProcess bool
	// Restore rebuilds the stock ledgers at start from what the warehouse
	// holds (stock.ReadReference with RestoreFrom), so a job started again after a crash or a
	// stop goes on from where the last one stored, not from the snapshot.
	Restore bool
	// RestoreScope is what the restore reads: stock.ScopeFull (every
	// stored adjustment, exact; the default off Dataflow) or
	// stock.ScopeRecent (latest stock_levels plus the adjustments of
	// the dedup window, bounded; the default on Dataflow, where the job's
	// state survives --update and a restore serves a new job after a drain).
	RestoreScope string
}

// dataflow reports whether the job runs on Dataflow (any spelling Beam
// accepts, see launch.IsDataflow).
func (c Config) dataflow() bool {
	return launch.IsDataflow(c.Runner)
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if (c.Subscription == "") == (c.Input == "") {
		return fmt.Errorf("stream: exactly one of --subscription and --input is required")
	}
	if c.Project == "" && (c.Subscription != "" || c.ThresholdSubscription != "" || c.AlertTopic != "" || c.DeadLetterTopic != "") {
		return fmt.Errorf("stream: --project is required to use Pub/Sub")
	}
	if c.AlertEncoding != event.EncodingJSON && c.AlertEncoding != event.EncodingBinary {
		return fmt.Errorf("stream: alert encoding %q is neither JSON nor BINARY", c.AlertEncoding)
	}
	if c.Warehouse == "" {
		return fmt.Errorf("stream: --warehouse is required")
	}
	switch c.RestoreScope {
	case "", stock.ScopeFull, stock.ScopeRecent:
	default:
		return fmt.Errorf("stream: --restore_scope %q is neither %s nor %s", c.RestoreScope, stock.ScopeFull, stock.ScopeRecent)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.DefaultThreshold <= 0 {
		c.DefaultThreshold = ledger.DefaultThreshold
	}
	if c.AlertEncoding == "" {
		c.AlertEncoding = event.EncodingJSON
	}
	if c.Shards <= 0 {
		c.Shards = stock.DefaultShards
	}
	if c.Horizon <= 0 {
		c.Horizon = ledger.DefaultHorizon
	}
	if c.RestoreScope == "" {
		c.RestoreScope = stock.ScopeFull
		if c.dataflow() {
			c.RestoreScope = stock.ScopeRecent
		}
	}
	return c
}

// Build adds the job to s. It panics on an invalid Config.
//
// The job has one graph per runner, made of the same named stages (read,
// decode, reference, stock, write; see the README's "Follow one event"):
// buildPrism for every runner but Dataflow, buildDataflow for Dataflow.
func Build(s beam.Scope, cfg Config) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.dataflow() {
		buildDataflow(s, cfg)
	} else {
		buildPrism(s, cfg)
	}
}

// buildPrism is the job off Dataflow: the project's Pub/Sub source, stock
// state by hash shard (a bundle pays Prism's per-element cost once per
// shard, not once per key), and one sink (commit.Write) that stores
// the rows of each bundle as one warehouse transaction, publishes the
// alerts and dead letters, then acks the messages: nothing is acked before
// all it caused is stored.
func buildPrism(s beam.Scope, cfg Config) {
	sink := cfg.commitOptions()
	dec := decode(s, cfg, readPrism(s, cfg))
	events := dec.Events
	if cfg.ThresholdSubscription != "" {
		// Threshold changes join the events at the stock stage, on the
		// shards they concern.
		ts := s.Scope("Thresholds")
		updates, rejected := stock.ShardThresholdUpdates(ts, readPrismThresholds(ts, cfg), cfg.Shards)
		commit.Write(s.Scope("RejectedThresholds"), rejected, sink)
		events = beam.Flatten(ts, dec.Events, updates)
	}
	stocked := applyStockPrism(s, cfg, events)
	// One sink per producer rather than one after a Flatten: Prism fuses
	// each with its producer, so commits are never encoded.
	commit.Write(s.Scope("Rejected"), dec.Rejected, sink)
	commit.Write(s.Scope("Stock"), stocked, sink)
}

// buildDataflow is the job on Dataflow: the native Pub/Sub read, which acks
// once the service has checkpointed what it read, stock state per (sku,
// location), so that the stage scales out by key and an event rewrites only
// its key's ledger, then the per-table sinks and the native Pub/Sub write.
func buildDataflow(s beam.Scope, cfg Config) {
	dec := decode(s, cfg, readDataflow(s, cfg))
	ref := stock.ReadReference(s, cfg.referenceOptions())
	keyed := stock.KeyEvents(s, dec.Events)
	var thresholdDead []beam.PCollection
	if cfg.ThresholdSubscription != "" {
		keyed, thresholdDead = routeThresholdsDataflow(s, cfg, dec.Events, keyed, ref)
	}
	stocked := stock.ApplyPerKey(s, keyed, ref, cfg.Horizon)
	writeDataflow(s, cfg, beam.Flatten(s.Scope("Outputs"), dec.Rejected, stocked), thresholdDead)
}

// readPrism is the read off Dataflow: the CSV replay or the project's
// Pub/Sub source, as batches of messages.
func readPrism(s beam.Scope, cfg Config) beam.PCollection {
	if cfg.Input != "" {
		return csvsrc.Read(s, cfg.Input)
	}
	return pubsubio.Read(s, pubsubio.PullOptions{Project: cfg.Project, Subscription: cfg.Subscription,
		MaxMessages: cfg.MaxMessages, MaxBatchWait: cfg.MaxBatchWait, PollInterval: cfg.PollInterval, Flight: cfg.Flight})
}

// readPrismThresholds reads the threshold changes off Dataflow.
func readPrismThresholds(s beam.Scope, cfg Config) beam.PCollection {
	return pubsubio.Read(s, pubsubio.PullOptions{Project: cfg.Project, Subscription: cfg.ThresholdSubscription,
		MaxBatchWait: cfg.MaxBatchWait, PollInterval: cfg.PollInterval, Flight: cfg.Flight})
}

// readDataflow is the read on Dataflow: the CSV replay or the native
// Pub/Sub read.
func readDataflow(s beam.Scope, cfg Config) beam.PCollection {
	if cfg.Input != "" {
		return csvsrc.Read(s, cfg.Input)
	}
	return pubsubio.ReadNative(s, cfg.Project, cfg.Subscription, pubsubio.NativeReadOptions{
		IDAttribute: cfg.IDAttribute, TimestampAttribute: cfg.TimestampAttribute})
}

// decode turns the read's batches into events by shard and dead letters.
func decode(s beam.Scope, cfg Config, batches beam.PCollection) stock.Decoded {
	origin := stock.OriginPubSub
	if cfg.Input != "" {
		origin = stock.OriginCSV
	}
	return stock.DecodeEvents(s, batches, cfg.Shards, origin)
}

// applyStockPrism is the stock stage by shard, its reference data handed
// over in memory when the workers run in this process (InProcess) and as
// a side input otherwise.
func applyStockPrism(s beam.Scope, cfg Config, events beam.PCollection) beam.PCollection {
	if cfg.InProcess {
		return stock.ApplyInProcess(s, events, stock.ReadReferenceInProcess(s, cfg.referenceOptions()), cfg.Horizon)
	}
	return stock.Apply(s, events, stock.ReadReference(s, cfg.referenceOptions()), cfg.Horizon)
}

// routeThresholdsDataflow adds the threshold changes to the keyed events
// on Dataflow: they go through a router keyed by SKU, which knows the SKU's
// locations, to the keys they concern (see the README). It returns the
// keyed events with the changes, and the dead letters of the changes.
func routeThresholdsDataflow(s beam.Scope, cfg Config, events, keyed, ref beam.PCollection) (beam.PCollection, []beam.PCollection) {
	ts := s.Scope("Thresholds")
	raw := pubsubio.ReadNative(ts, cfg.Project, cfg.ThresholdSubscription, pubsubio.NativeReadOptions{})
	updates, bad := stock.KeyThresholdUpdates(ts, raw)
	routes := beam.Flatten(ts, stock.RegisterLocations(ts, events), updates)
	routed, changes := stock.RouteThresholdUpdates(ts, routes, ref)
	return beam.Flatten(ts, keyed, routed), []beam.PCollection{bad,
		warehouse.WriteRows(ts, cfg.Warehouse, warehouse.ThresholdChanges, changes),
		warehouse.WriteRows(ts, cfg.Warehouse, warehouse.DeadLetters, bad)}
}

// writeDataflow stores the commits on Dataflow, one sink per table, and
// publishes the alerts and dead letters with the native Pub/Sub write.
// Rows a table refuses are stored in dead_letters by the sink and go to
// the dead-letter topic with the others.
func writeDataflow(s beam.Scope, cfg Config, commits beam.PCollection, thresholdDead []beam.PCollection) {
	out := commit.Unpack(s, commits)
	dead := beam.Flatten(s.Scope("DeadLetters"), append(thresholdDead, out.DeadLetters,
		warehouse.WriteRowsHealth(s, cfg.Warehouse, warehouse.Adjustments, out.Adjustments, commit.MetricNamespace),
		warehouse.WriteRows(s, cfg.Warehouse, warehouse.StockLevels, out.Levels),
		warehouse.WriteRowsHealth(s, cfg.Warehouse, warehouse.LowStockAlerts, out.Alerts, commit.MetricNamespace),
		warehouse.WriteRows(s, cfg.Warehouse, warehouse.DeadLetters, out.DeadLetters))...)
	if cfg.AlertTopic != "" {
		pubsubio.WriteNative(s, cfg.Project, cfg.AlertTopic, commit.AlertMessages(s, out.Alerts, cfg.AlertEncoding))
	}
	if cfg.DeadLetterTopic != "" {
		pubsubio.WriteNative(s, cfg.Project, cfg.DeadLetterTopic, commit.DeadLetterMessages(s, dead))
	}
}

// referenceOptions names the stock stage's reference data.
func (c Config) referenceOptions() stock.ReferenceOptions {
	o := stock.ReferenceOptions{Thresholds: c.Thresholds, Snapshot: c.Snapshot, Default: c.DefaultThreshold, Horizon: c.Horizon}
	if c.Restore {
		o.RestoreFrom, o.RestoreScope = c.Warehouse, c.RestoreScope
	}
	return o
}

// commitOptions configures the sink off Dataflow. A CSV replay acks
// nothing.
func (c Config) commitOptions() commit.Options {
	sub := c.Subscription
	if c.Input != "" {
		sub = ""
	}
	return commit.Options{Warehouse: c.Warehouse, Project: c.Project,
		Subscription: sub, ThresholdSubscription: c.ThresholdSubscription,
		AlertTopic: c.AlertTopic, AlertEncoding: c.AlertEncoding, DeadLetterTopic: c.DeadLetterTopic, Flight: c.Flight}
}
