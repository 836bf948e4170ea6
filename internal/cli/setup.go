package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/loaders/broker"
)

func newSetupCmd(g *Globals) *cobra.Command {
	var cfg broker.SetupConfig
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create topics, subscriptions and schemas (idempotent)",
		Long: `setup makes everything the pipeline needs exist as specified:
inventory-topic (bound to inventory-schema) and inventory-sub with a
dead-letter policy, low-stock-alerts (bound to low-stock-alert-schema) and
low-stock-consumer, the dead-letter topic and its subscription. A schema gets
a new revision only when its proto file changed. A second run changes nothing
and says so. --dry-run prints the plan.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg.Project = g.Project
			admin, err := broker.NewAdmin(ctx, g.Project)
			if err != nil {
				return err
			}
			defer admin.Close()
			acts, err := admin.Setup(ctx, cfg)
			out := cmd.OutOrStdout()
			for _, a := range acts {
				fmt.Fprintln(out, a)
			}
			if err != nil {
				return err
			}
			switch {
			case cfg.DryRun:
				fmt.Fprintln(out, "dry run: nothing was changed")
			case !broker.Changed(acts):
				fmt.Fprintln(out, "everything is up to date: nothing changed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Encoding, "encoding", "json", "schema encoding bound to the topics: json or binary")
	cmd.Flags().BoolVar(&cfg.DryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().Int32Var(&cfg.MaxDeliveryAttempts, "max-delivery-attempts", 5, "deliveries before inventory-sub dead-letters a message")
	return cmd
}
