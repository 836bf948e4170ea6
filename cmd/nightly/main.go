// Command nightly is the nightly inventory summary batch job.
//
// Locally (--runner prism, the default) it runs in process and records the
// run in report_runs (RUNNING, then SUCCEEDED or FAILED):
//
//	nightly --date 2026-11-24 --input testdata/inventory_adjustments.csv \
//	  --snapshot testdata/inventory_state.json --thresholds testdata/thresholds.csv
//
// --from and --to (instead of --date) backfill a range of dates, in order.
// Each day's report is a function of the warehouse's data (the stream's
// starting stock and the adjustments up to the day's end), whichever days
// ran before it.
//
// On Dataflow (also as a Flex Template) it is launched like any Beam job:
//
//	nightly --runner dataflow --project P --region R --staging_location gs://B/staging \
//	  --warehouse bq://P.inventory --output gs://B/reports [--dry_run]
//
// The binary stages itself as the Dataflow worker, so build it static for
// linux/amd64 (CGO_ENABLED=0 GOOS=linux GOARCH=amd64) or pass --worker_binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"
	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
	"github.com/inventory-events/inventory/pipelines/launch"
	"github.com/inventory-events/inventory/pipelines/nightly"
)

var (
	date       = flag.String("date", "", "report date YYYY-MM-DD (default: yesterday in --timezone)")
	timezone   = flag.String("timezone", "UTC", "IANA time zone of the report day")
	input      = flag.String("input", "", "adjustments CSV file or glob (local or gs://); default: read the warehouse")
	wh         = flag.String("warehouse", warehouse.DefaultURI, "local warehouse directory or bq://PROJECT.DATASET")
	snapshot   = flag.String("snapshot", "", "inventory_state.json the stream started from (default: its starting stock in the warehouse's stock_levels)")
	thresholds = flag.String("thresholds", "", "the stream's sku,location_id,threshold CSV (local or gs://); the live changes in threshold_changes apply over it (default: each key's latest threshold in stock_levels)")
	defThresh  = flag.Int64("default_threshold", 10, "reorder threshold of keys no rule names")
	output     = flag.String("output", nightly.DefaultOutput, "report root: local directory or gs://BUCKET/PREFIX")
	runID      = flag.String("run_id", "", "run ID (default: generated)")
	shards     = flag.Int("shards", nightly.DefaultShards, "key shards the work is split into")
	chunkBytes = flag.Int64("chunk_bytes", nightly.DefaultChunkBytes, "bytes of CSV read by one element")
	verbose    = flag.Bool("verbose", false, "log the runner's progress (INFO), not only warnings and errors")
	from       = flag.String("from", "", "backfill: first report date YYYY-MM-DD (with --to, instead of --date; prism only)")
	to         = flag.String("to", "", "backfill: last report date YYYY-MM-DD")
	preflight  = flag.Bool("preflight", true, "before a Dataflow launch, check the date, the files named and that the warehouse answers")
)

func main() {
	flag.Parse()
	beam.Init()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	line := console.NewLine(os.Stderr) // nil off a terminal
	slog.SetDefault(slog.New(console.QuietCancel(slog.NewJSONHandler(line.Writer(os.Stderr), &slog.HandlerOptions{Level: level}))))
	ctx := context.Background()
	// Dataflow in any spelling: runner "dataflow" and this binary as the
	// worker (it must be a static linux/amd64 build, or --worker_binary given).
	if _, err := launch.Prepare(flag.CommandLine); err != nil {
		console.Fatal("nightly", err)
	}
	local := launch.IsPrism(*runners.Runner) || *runners.Runner == "direct" || *from != "" || *to != ""
	if local {
		// Prism's job server confined to loopback, for a user other than
		// root too: in a user namespace, this command started again.
		if code, ran, err := launch.ReexecConfined(); ran {
			if err != nil {
				console.Fatal("nightly", err)
			}
			os.Exit(code)
		}
	}

	d, err := reportDate()
	if err != nil {
		console.Fatal("nightly", err)
	}
	cfg := nightly.Config{Date: d, TimeZone: *timezone, Input: *input, Warehouse: *wh, Snapshot: *snapshot,
		Thresholds: *thresholds, DefaultThreshold: *defThresh, Output: *output, RunID: *runID,
		Shards: *shards, ChunkBytes: *chunkBytes, Runner: *runners.Runner}
	if _, _, err := cfg.Window(); err != nil {
		console.Fatal("nightly", err)
	}
	if local {
		pr, err := launch.StartPrism(ctx)
		if err != nil {
			console.Fatal("nightly", err)
		}
		if pr.Note != "" {
			slog.Warn("nightly: " + pr.Note)
		}
	}
	if *from != "" || *to != "" {
		if err := backfill(ctx, cfg); err != nil {
			console.Fatal("nightly", err)
		}
		return
	}
	switch *runners.Runner {
	case "", "prism", "direct":
		if err := runLocal(ctx, cfg, os.Stdout, line); err != nil {
			console.Fatal("nightly", err)
		}
	default:
		if *preflight {
			if _, err := nightly.Preflight(ctx, cfg); err != nil {
				console.Fatal("nightly", err)
			}
		}
		p, s := beam.NewPipelineWithRoot()
		nightly.Build(s, cfg)
		if err := beamx.Run(ctx, p); err != nil {
			console.Fatal("nightly", err)
		}
	}
}

func reportDate() (civil.Date, error) {
	if *date == "" {
		return nightly.Yesterday(*timezone, clock.Now())
	}
	return parseDate(*date)
}

// backfill runs --from to --to in order on Prism, one line per date.
func backfill(ctx context.Context, cfg nightly.Config) error {
	if *date != "" {
		return fmt.Errorf("nightly: give --date or --from/--to, not both")
	}
	f, err := parseDate(*from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	t, err := parseDate(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	cfg.Runner = "prism"
	_, err = nightly.RunRange(ctx, cfg, f, t, func(r nightly.RunResult) {
		fmt.Printf("%s  %d keys  %d events  %d mismatches  %s  (%s)\n", r.Date, r.Keys, r.Events, r.Mismatch,
			r.OutputURI, r.Duration.Round(100*time.Millisecond))
	})
	return err
}
