package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/thresholds"
)

func newConsumeCmd(g *globals) *cobra.Command {
	var (
		cfg           broker.ConsumeConfig
		names         = broker.DefaultNames()
		thresholdsURI string
		startURI      string
		defaultThresh int64
		quiet         bool
	)
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Consume adjustments and keep stock in inventory_state.json",
		Long: `consume is the seed's subscriber: it receives adjustments from inventory-sub,
decodes each by its googclient_schemaencoding attribute (JSON or BINARY),
validates it, applies the stock rules, and writes the stock to --snapshot
atomically every --interval and on exit (a path or gs://). Messages are acked
only once a snapshot that includes them is written. An invalid message goes to
the dead-letter topic with its reason and never stops the consumer.
SIGINT/SIGTERM drain, ack, write and exit 0; --max-idle stops once drained.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			th, err := thresholds.Read(ctx, thresholdsURI, defaultThresh)
			if err != nil {
				return fmt.Errorf("consume: %w", err)
			}
			if startURI == "" {
				startURI = cfg.SnapshotURI
			}
			if startURI != "" {
				f, err := snapshot.Read(ctx, startURI)
				switch {
				case err == nil:
					cfg.Start = f
				case startURI == cfg.SnapshotURI && errors.Is(err, fs.ErrNotExist):
					// First run: no snapshot yet.
				default:
					return fmt.Errorf("consume: %w", err)
				}
			}
			cfg.Thresholds = th
			cfg.Subscription, cfg.DeadLetterTopic = names.Subscription, names.DeadLetterTopic
			cfg.Logger = g.Logger
			out := cmd.OutOrStdout()
			if !quiet {
				cfg.OnAlert = func(k event.Key, a *event.Adjustment, r ledger.Result, th int64) {
					fmt.Fprintf(out, "ALERT %-9s %s on_hand=%d threshold=%d event=%s\n", r.To.AlertName(), k, r.OnHand, th, a.EventID)
				}
			}
			admin, err := broker.NewAdmin(ctx, g.Project)
			if err != nil {
				return err
			}
			defer admin.Close()
			// A signal ends ctx; Consume drains, acks and writes before returning.
			store, st, err := broker.NewConsumer(admin, cfg).Consume(ctx)
			if err != nil {
				return err
			}
			g.Logger.Info("consumer stopped", "stats", st.String())
			fmt.Fprintf(cmd.ErrOrStderr(), "consumed: %s; %d keys, %d below threshold\n", st, len(store.OnHand()), len(store.Below()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Format, "format", "json", "encoding assumed for messages without a schema attribute: json or proto")
	f.StringVar(&cfg.SnapshotURI, "snapshot", "inventory_state.json", "where to write the stock (path or gs://); also read at start if it exists")
	f.StringVar(&startURI, "start", "", "starting snapshot to read instead of --snapshot")
	f.StringVar(&thresholdsURI, "thresholds", "", "thresholds CSV (sku,location_id,threshold; * = every location), path or gs://")
	f.Int64Var(&defaultThresh, "default-threshold", ledger.DefaultThreshold, "threshold of keys no rule names")
	f.DurationVar(&cfg.Interval, "interval", 5*time.Second, "how often the snapshot is written (and messages acked)")
	f.DurationVar(&cfg.MaxIdle, "max-idle", 0, "stop after no message for this long (0: until interrupted)")
	f.StringVar(&names.Subscription, "subscription", names.Subscription, "subscription id")
	f.BoolVar(&quiet, "quiet", false, "do not print alerts")
	return cmd
}
