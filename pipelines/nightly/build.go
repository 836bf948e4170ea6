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

// Build adds the nightly job for cfg to s: sources (the stream's starting
// stock, the adjustments from there to the end of the day, the streaming
// stock), the per-key summary (each key replayed from its starting stock:
// the opening stock, the day and the trends of the days before), and the
// publish step that writes the report files, daily_summary and report_runs.
// Nothing is read from earlier reports. A bad Config panics (misuse while
// the pipeline is built).
func Build(s beam.Scope, cfg Config) Outputs {
	cfg = cfg.withDefaults()
	w := cfg.window()
	s = s.Scope("nightly")
	imp := beam.Impulse(s)

	opening, since := summary.Opening(s, cfg.Warehouse, cfg.Snapshot, cfg.Date.String(), w, cfg.Shards)
	var adjustments beam.PCollection
	if cfg.Input != "" {
		adjustments = summary.ReadCSV(s, cfg.Input, cfg.ChunkBytes, w.End, cfg.Shards, cfg.Meter)
	} else {
		adjustments = summary.ReadWarehouse(s, cfg.Warehouse, since, w.End, cfg.Shards, cfg.Meter)
	}
	streaming := summary.Streaming(s, cfg.Warehouse, w.End, cfg.Shards)

	parts := beam.Flatten(s, opening, adjustments, streaming)
	opts := summary.Options{Day: w, ThresholdsURI: cfg.Thresholds, DefaultThreshold: cfg.DefaultThreshold,
		Warehouse: cfg.Warehouse, MaxCharts: cfg.MaxCharts}
	sums := summary.Summarize(s, parts, opts)
	gather := summary.GatherAll(s, sums, opts)
	// The publish step gets the impulse (so that it runs exactly once, even
	// for an empty day) and the Gather grouped under one key, rather than
	// the Gather as a side input: Prism's scheduler spins for as long as a
	// stage with a side input runs (docs/beam-notes.md, "Speed on Prism").
	inputs := beam.CoGroupByKey(s, beam.AddFixedKey(s, imp), beam.AddFixedKey(s, gather))
	published := beam.ParDo(s, newPublishFn(cfg), inputs)
	beam.GroupByKey(s.Scope("EndStage"), published) // see publishFn.ProcessElement
	return Outputs{Summaries: sums, Gather: gather}
}
