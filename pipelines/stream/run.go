package stream

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/inventory-events/inventory/pipelines/launch"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/stock"
)

// Run builds the job of a prepared Config (Config.Prepare) and runs it on
// the runner of --runner until it ends, as cmd/stream does: off Dataflow
// with prismExperiments, and with cfg.InProcess on Prism started in this
// process (launch.StartPrism). A bounded replay (Input) logs its counters
// at the end.
func Run(ctx context.Context, cfg Config) (beam.PipelineResult, error) {
	if cfg.InProcess {
		pr, err := launch.StartPrism(ctx)
		if err != nil {
			return nil, err
		}
		if pr.Note != "" {
			slog.Warn("stream: " + pr.Note)
		}
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, cfg)
	if !cfg.dataflow() {
		UsePrismExperiments()
	}
	res, err := beamx.RunWithMetrics(ctx, p)
	if err != nil {
		return nil, err
	}
	if cfg.Input != "" && res != nil {
		c := commit.CountsOf(res)
		slog.Info("stream: done", "received", c.Received, "applied", c.Applied,
			"duplicates", c.Duplicates, "dead_lettered", c.DeadLettered, "balanced", c.Balanced())
	}
	return res, nil
}

// prismExperiments returns the experiments a stream job must run with on
// any runner but Dataflow: Prism's dynamic splitting of bundles off
// (stock.PrismNoSplitExperiment), without which Prism loses stock updates.
func prismExperiments() []string { return []string{stock.PrismNoSplitExperiment} }

// UsePrismExperiments adds prismExperiments to --experiments, from which
// Beam takes the experiments of each job it submits. Whoever runs a stream
// job off Dataflow calls it before running the job (RunPrism does); Build
// leaves the options alone.
func UsePrismExperiments() {
	exps := jobopts.GetExperiments()
	for _, e := range prismExperiments() {
		if !slices.Contains(exps, e) {
			exps = append(exps, e)
		}
	}
	*jobopts.Experiments = strings.Join(exps, ",")
}

// RunPrism runs a pipeline that Build made on Prism (in this process unless
// --endpoint names one) with prismExperiments, until the job ends. The
// in-process Prism is launch.StartPrism's: on Linux, confined to loopback.
func RunPrism(ctx context.Context, p *beam.Pipeline) (beam.PipelineResult, error) {
	UsePrismExperiments()
	if _, err := launch.StartPrism(ctx); err != nil {
		return nil, err
	}
	return prism.Execute(ctx, p)
}
