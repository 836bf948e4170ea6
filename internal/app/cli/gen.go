package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

func newGenCmd(*globals) *cobra.Command {
	var (
		cfg           synth.Config
		start         string
		out           string
		snapshotPath  string
		thresholdPath string
	)
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate a deterministic synthetic adjustments CSV",
		Long: `gen writes a synthetic stream of adjustments in the contract's CSV format:
the same flags always give the same bytes. --snapshot and --thresholds also
write the starting stock and the reorder thresholds the stream assumes.

  inventory gen --events 1000000 --skus 10000 --seed 1 > events.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := time.Parse(time.RFC3339, start)
			if err != nil {
				return fmt.Errorf("gen: --start %q: want RFC 3339, e.g. 2026-11-24T00:00:00Z", start)
			}
			cfg.Start = t
			if err := checkGen(cfg); err != nil {
				return err
			}
			t0 := time.Now()
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("gen: %w", err)
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriter(w)
			if err := synth.Generate(bw, cfg); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("gen: %w", err)
			}
			if snapshotPath != "" {
				if err := snapshot.Write(cmd.Context(), snapshotPath, synth.Snapshot(cfg)); err != nil {
					return err
				}
			}
			if thresholdPath != "" {
				if err := os.MkdirAll(filepath.Dir(thresholdPath), 0o755); err != nil {
					return fmt.Errorf("gen: %w", err)
				}
				f, err := os.Create(thresholdPath)
				if err != nil {
					return fmt.Errorf("gen: %w", err)
				}
				defer f.Close()
				if err := synth.WriteThresholds(f, cfg); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), genSummary(cfg, out, snapshotPath, thresholdPath, time.Since(t0)))
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", 1000, "rows to write")
	f.IntVar(&cfg.SKUs, "skus", 20, "distinct SKUs")
	f.IntVar(&cfg.Locations, "locations", 3, "distinct locations")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	f.StringVar(&start, "start", "2026-11-24T00:00:00Z", "first event time (and the snapshot's as_of)")
	f.DurationVar(&cfg.Span, "span", 24*time.Hour, "events are spread over this long")
	f.IntVar(&cfg.InvalidEvery, "invalid-every", 0, "make every n-th row invalid (0: none)")
	f.StringVarP(&out, "out", "o", "-", "output file (- for standard output)")
	f.StringVar(&snapshotPath, "snapshot", "", "also write the starting snapshot here")
	f.StringVar(&thresholdPath, "thresholds", "", "also write the thresholds CSV here")
	return cmd
}

// checkGen refuses flags the generator would panic on or ignore.
func checkGen(c synth.Config) error {
	switch {
	case c.Events < 0:
		return fmt.Errorf("gen: --events %d: want 0 or more rows", c.Events)
	case c.SKUs < 1:
		return fmt.Errorf("gen: --skus %d: want at least 1", c.SKUs)
	case c.Locations < 1:
		return fmt.Errorf("gen: --locations %d: want at least 1", c.Locations)
	case c.Span <= 0:
		return fmt.Errorf("gen: --span %s: want a positive duration, e.g. 24h", c.Span)
	case c.InvalidEvery < 0:
		return fmt.Errorf("gen: --invalid-every %d: want 0 (none) or more", c.InvalidEvery)
	}
	return nil
}

// genSummary is the line gen prints on success.
func genSummary(c synth.Config, out, snapshotPath, thresholdPath string, took time.Duration) string {
	if out == "" || out == "-" {
		out = "standard output"
	}
	s := fmt.Sprintf("gen: wrote %s rows (%d SKUs x %d locations, %s from %s, seed %d) to %s",
		console.Thousands(int64(c.Events)), c.SKUs, c.Locations, c.Span, c.Start.Format(time.RFC3339), c.Seed, out)
	if snapshotPath != "" {
		s += "; snapshot " + snapshotPath
	}
	if thresholdPath != "" {
		s += "; thresholds " + thresholdPath
	}
	return s + " in " + took.Round(time.Millisecond).String()
}
