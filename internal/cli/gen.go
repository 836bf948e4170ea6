package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/synth"
)

func newGenCmd(*Globals) *cobra.Command {
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
				return fmt.Errorf("gen: --start: %w", err)
			}
			cfg.Start = t
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
