package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/pipelines/stream"
)

// flagGroups are the job's own flags, as --help shows them, before the
// runner's.
var flagGroups = []struct {
	title string
	names []string
}{
	{"Input (exactly one of --subscription and --input)", []string{"subscription", "input", "thresholds", "snapshot", "default_threshold", "restore", "restore_scope"}},
	{"Output", []string{"warehouse", "alert_topic", "alert_encoding", "dead_letter_topic"}},
	{"Tuning", []string{"shards", "dedup_horizon", "max_messages", "max_batch_wait", "id_attribute", "timestamp_attribute"}},
	{"Where it runs (the runner's flags used most)", []string{"runner", "project", "region", "staging_location", "temp_location", "job_name", "update", "dry_run", "worker_binary"}},
}

// usage prints the job's flags first, grouped, then every other flag (the
// Beam SDK's and the runners', registered on the same flag set).
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `Usage: stream [flags]

The inventory streaming job: adjustments from a Pub/Sub subscription (or a
CSV replay with --input) -> stock per (sku, location) -> low-stock alerts and
dead letters to their topics and, with every adjustment and stock level, to
the warehouse. Without --project (and with --input), nothing is published:
alerts and dead letters go to the warehouse only.

  stream --input=testdata/inventory_adjustments.csv --warehouse=./warehouse
  stream --project=P --subscription=inventory-sub --snapshot=state.json
`)
	shown := map[string]bool{}
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, n := range g.names {
			if f := fs.Lookup(n); f != nil {
				printFlag(w, f)
				shown[n] = true
			}
		}
	}
	var rest []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !shown[f.Name] {
			rest = append(rest, f)
		}
	})
	sort.Slice(rest, func(i, j int) bool { return rest[i].Name < rest[j].Name })
	fmt.Fprintf(w, "\nThe runner's other flags (Apache Beam SDK, Prism, Dataflow; %d):\n", len(rest))
	for _, f := range rest {
		printFlag(w, f)
	}
}

func printFlag(w io.Writer, f *flag.Flag) {
	name, help := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if name != "" {
		line += "=" + name
	}
	if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" {
		if name == "string" {
			def = strconvQuote(def)
		}
		help += " (default " + def + ")"
	}
	fmt.Fprintf(w, "%-34s %s\n", line, strings.ReplaceAll(help, "\n", "\n"+strings.Repeat(" ", 35)))
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// explicit returns the names of the flags set on the command line.
func explicit(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// replayProgress shows on line how many rows of a CSV replay the local
// warehouse holds, against the rows of the file, until stop is called.
func replayProgress(ctx context.Context, line *console.Line, cfg stream.Config) (stop func()) {
	total, stored, ok := stream.ReplayRows(ctx, cfg)
	if line == nil || !ok {
		return func() {}
	}
	base := max(stored(), 0)
	t0 := time.Now()
	last := int64(0)
	return line.Tick(time.Second, func() string {
		if n := stored(); n >= 0 {
			last = n - base
		}
		return console.Bar("stream "+cfg.Input, last, total, "rows stored", time.Since(t0), line.Width())
	})
}
