// Command stream runs the inventory streaming job (pipelines/stream).
//
// Locally, on Prism, against the local Pub/Sub (PUBSUB_EMULATOR_HOST):
//
//	go run ./cmd/stream --project=local-project --subscription=inventory-sub \
//	  --thresholds=testdata/thresholds.csv --snapshot=testdata/inventory_state.json
//
// A bounded replay of a CSV: --input=testdata/inventory_adjustments.csv.
// On Dataflow: --runner=dataflow --project=P --region=R --staging_location=gs://B/staging
// (see pipelines/stream/README.md and deploy/README.md). The binary stages
// itself as the worker, so build it static for linux/amd64
// (CGO_ENABLED=0 GOOS=linux GOARCH=amd64) or pass --worker_binary.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/gcpopts"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/ledger"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
	"github.com/inventory-events/inventory/pipelines/launch"
	"github.com/inventory-events/inventory/pipelines/stream"
	"github.com/inventory-events/inventory/transforms/pubsubio"
	"github.com/inventory-events/inventory/transforms/stock"
)

var (
	subscription     = flag.String("subscription", "", "Pub/Sub subscription (id or path) to read adjustments from")
	thresholdSub     = flag.String("threshold_subscription", "", "Pub/Sub subscription to threshold-updates: live reorder threshold changes (empty: none)")
	input            = flag.String("input", "", "CSV of adjustments (local or gs://) to replay instead, as a bounded run")
	thresholds       = flag.String("thresholds", "", "thresholds CSV sku,location_id,threshold (local or gs://)")
	snapshot         = flag.String("snapshot", "", "starting stock snapshot JSON (local or gs://)")
	defaultThreshold = flag.Int64("default_threshold", ledger.DefaultThreshold, "threshold of keys no rule names")
	alertTopic       = flag.String("alert_topic", stream.DefaultAlertTopic, "topic for low-stock alerts (empty: none)")
	alertEncoding    = flag.String("alert_encoding", "", "alert topic schema encoding JSON or BINARY (default: the topic's, looked up off Dataflow; JSON on Dataflow)")
	deadLetterTopic  = flag.String("dead_letter_topic", stream.DefaultDeadLetterTopic, "topic for dead letters (empty: none)")
	warehouseURI     = flag.String("warehouse", stream.DefaultWarehouse, "warehouse: a local directory or bq://PROJECT.DATASET")
	shards           = flag.Int("shards", stock.DefaultShards, "hash shards of the key space holding stock state")
	horizon          = flag.Duration("dedup_horizon", ledger.DefaultHorizon, "event-time window of remembered event ids per key")
	maxMessages      = flag.Int("max_messages", pubsubio.DefaultMaxMessages, "most messages per source bundle (off Dataflow)")
	maxBatchWait     = flag.Duration("max_batch_wait", pubsubio.DefaultMaxBatchWait, "how long the source gathers one batch while the job is busy with the ones before (off Dataflow)")
	idAttribute      = flag.String("id_attribute", "", "attribute Dataflow's native read deduplicates on")
	tsAttribute      = flag.String("timestamp_attribute", "", "attribute Dataflow's native read takes timestamps from")
	restore          = flag.Bool("restore", true, "rebuild stock at start from what the warehouse holds, also before an --input replay, so that events it already holds are duplicates (off: start from --snapshot)")
	restoreScope     = flag.String("restore_scope", "", "what --restore reads: full (every stored adjustment; the default off Dataflow) or recent (stock_levels plus the dedup window's adjustments; the default on Dataflow)")
)

func main() {
	flag.Usage = func() { usage(flag.CommandLine, os.Stderr) }
	flag.Parse()
	beam.Init()
	ctx := context.Background()
	line := console.NewLine(os.Stderr) // progress of a CSV replay on a terminal; nil otherwise
	slog.SetDefault(slog.New(console.QuietCancel(slog.NewTextHandler(line.Writer(os.Stderr), nil))))

	// Dataflow in any spelling: runner "dataflow" and this binary as the
	// worker (it must be a static linux/amd64 build, or --worker_binary given).
	if _, err := launch.Prepare(flag.CommandLine); err != nil {
		console.Fatal("stream", err)
	}
	runner := flag.Lookup("runner").Value.String()
	local := launch.IsPrism(runner) && !flagSet("endpoint") // Prism in this process
	if local {
		// Prism's job server confined to loopback, for a user other than
		// root too: in a user namespace, this command started again.
		if code, ran, err := launch.ReexecConfined(); ran {
			if err != nil {
				console.Fatal("stream", err)
			}
			os.Exit(code)
		}
	}
	cfg := stream.Config{
		Runner: runner, Project: *gcpopts.Project, Subscription: *subscription, Input: *input, ThresholdSubscription: *thresholdSub,
		Thresholds: *thresholds, Snapshot: *snapshot, DefaultThreshold: *defaultThreshold,
		AlertTopic: *alertTopic, AlertEncoding: *alertEncoding, DeadLetterTopic: *deadLetterTopic,
		Warehouse: *warehouseURI, Shards: *shards, Horizon: *horizon, MaxMessages: *maxMessages, MaxBatchWait: *maxBatchWait,
		IDAttribute: *idAttribute, TimestampAttribute: *tsAttribute, Restore: *restore,
		RestoreScope: *restoreScope,
		InProcess:    local,
	}
	note, err := cfg.Prepare(ctx, explicit(flag.CommandLine))
	if err != nil {
		console.Fatal("stream", err)
	}
	if note != "" {
		slog.Warn("stream: " + note)
	}
	stop := replayProgress(ctx, line, cfg)
	_, err = stream.Run(ctx, cfg)
	stop()
	if err != nil {
		console.Fatal("stream", err)
	}
}

// flagSet reports whether the flag name (one of Beam's) has a value.
func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}
