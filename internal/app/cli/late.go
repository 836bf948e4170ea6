package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/loaders/broker"
)

func newReplayLateCmd(g *globals) *cobra.Command {
	cfg := broker.LateConfig{}
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "replay-late",
		Short: "Apply the events dead-lettered too_late, after checking them against the warehouse",
		Long: `replay-late applies the events that the streaming job dead-lettered as too_late.

The job remembers event ids for 8 days of event time behind each key's newest
event. An event older than that (a store that uploads two weeks of history at
once, which Pub/Sub delivers in any order) cannot be told from a redelivery
there, so the job refuses it as too_late rather than risk applying it twice.
The warehouse remembers every id: replay-late checks each too_late dead letter
against every adjustment stored, and publishes the events it does not hold to
inventory-topic again, marked as checked. The running job then judges them as
a replay of the whole history would: superseded if a later count covers them,
else applied, with alerts as usual. A late COUNTED event is left alone (the
job no longer keeps the deltas after it one by one): record a new count.

Running it again is safe: events stored since are skipped, and a second copy
of a checked event is a duplicate. It waits (--wait) until the job has stored
every event it published, and exits non-zero if that does not happen.`,
		Example: `  inventory replay-late --dry-run
  inventory replay-late --warehouse bq://my-project.inventory`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			admin, err := broker.NewAdmin(ctx, g.Project)
			if err != nil {
				return err
			}
			defer admin.Close()
			if !cfg.DryRun {
				if err := probePubSub(ctx, admin); err != nil {
					return err
				}
			}
			st, err := admin.ReplayLate(ctx, cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			verb := "published again"
			if cfg.DryRun {
				verb = "would be published again (dry run)"
			}
			fmt.Fprintf(out, "%d too_late dead letters: %d already stored, %d repeated, %d unreadable, %d late counts left (record a new count), %d %s\n",
				st.DeadLetters, st.Stored, st.Repeated, st.Unreadable, st.Counts, len(st.Events), verb)
			if cfg.DryRun || len(st.Events) == 0 || wait <= 0 {
				return nil
			}
			line := console.NewLine(cmd.ErrOrStderr())
			n, err := broker.WaitLateStored(ctx, cfg.Warehouse, st.Events, wait, func(stored, total int) {
				line.Set(fmt.Sprintf("replay-late: %d of %d stored by the streaming job", stored, total))
			})
			line.Clear()
			if err != nil {
				return err
			}
			if n < len(st.Events) {
				return fmt.Errorf("replay-late: the streaming job stored %d of the %d events within %s: is it running (inventory up, or the Dataflow job)? Run replay-late again once it is: it skips what is stored", n, len(st.Events), wait)
			}
			fmt.Fprintf(out, "all %d stored by the streaming job; see their status in adjustments (APPLIED or SUPERSEDED)\n", n)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Warehouse, "warehouse", "./warehouse", "warehouse that holds the dead letters and adjustments (local directory or bq://PROJECT.DATASET)")
	f.StringVar(&cfg.Topic, "topic", broker.DefaultNames().Topic, "adjustments topic the streaming job reads")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "check and count, publish nothing")
	f.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the streaming job to store what was published (0: do not wait)")
	return cmd
}
