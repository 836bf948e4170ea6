package nightly

import (
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/inventory-events/inventory/transforms/summary"
)

// Outputs are the job's PCollections, for tests.
type Outputs struct {
	// Summaries holds one summary.Summary per key.
	Summaries beam.PCollection
	// Gather holds one summary.Gather: every row and the charts.
	Gather beam.PCollection
}

// Build adds the nightly job for cfg to s: sources (the opening stock, the
// day's adjustments, the streaming stock, and the trend history of the 27
// days before), the per-key summary, and the publish step that writes the
// report files, daily_summary and report_runs. A bad Config panics (misuse while the pipeline is built).
func Build(s beam.Scope, cfg Config) Outputs {
	cfg = cfg.withDefaults()
	w := cfg.window()
	s = s.Scope("nightly")
	imp := beam.Impulse(s)

	opening, from := beam.ParDo2(s, &openingFn{Warehouse: cfg.Warehouse, Snapshot: cfg.Snapshot,
		Date: cfg.Date.String(), Window: w, Shards: cfg.Shards}, imp)
	since := beam.SideInput{Input: from}

	var adjustments beam.PCollection
	if cfg.Input != "" {
		ranges := beam.ParDo(s, &csvSplitFn{Glob: cfg.Input, ChunkBytes: cfg.ChunkBytes}, imp)
		ranges = beam.Reshuffle(s, ranges)
		adjustments = beam.ParDo(s, &csvReadFn{End: w.End, Shards: cfg.Shards}, ranges, since)
	} else {
		slices := beam.ParDo(s, &sliceFn{N: cfg.Shards}, imp)
		slices = beam.Reshuffle(s, slices)
		adjustments = beam.ParDo(s, &warehouseReadFn{Warehouse: cfg.Warehouse, Slices: cfg.Shards,
			End: w.End, Shards: cfg.Shards}, slices, since)
	}
	streaming := beam.ParDo(s, &streamingFn{Warehouse: cfg.Warehouse, End: w.End, Shards: cfg.Shards}, imp)
	history, days := beam.ParDo2(s, &historyFn{Warehouse: cfg.Warehouse, Date: cfg.Date.String(), Shards: cfg.Shards}, imp)

	parts := beam.Flatten(s, opening, adjustments, streaming, history)
	opts := summary.Options{Window: w, ThresholdsURI: cfg.Thresholds, DefaultThreshold: cfg.DefaultThreshold,
		MaxCharts: cfg.MaxCharts}
	sums := summary.Summarize(s, parts, opts)
	gather := summary.GatherAll(s, sums, opts)
	beam.ParDo0(s, newPublishFn(cfg), imp, beam.SideInput{Input: gather}, beam.SideInput{Input: days})
	return Outputs{Summaries: sums, Gather: gather}
}
