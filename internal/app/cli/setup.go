package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports/trigger"
)

func newSetupCmd(g *globals) *cobra.Command {
	var (
		cfg        broker.SetupConfig
		wh         string
		bqLocation string
		sched      trigger.SchedulerConfig
	)
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Create topics, subscriptions and schemas (idempotent)",
		Long: `setup makes everything the pipeline needs exist as specified:
inventory-topic (bound to inventory-schema) and inventory-sub with a
dead-letter policy, low-stock-alerts (bound to low-stock-alert-schema) and
low-stock-consumer, the dead-letter topic and its subscription; the
warehouse tables (--warehouse, a directory or bq://PROJECT.DATASET); and, with
--trigger-url, the Cloud Scheduler job nightly-inventory-summary. A schema gets
a new revision only when its proto file changed. A second run changes nothing
and says so. --dry-run prints the plan.

--for-dataflow creates inventory-sub for the Dataflow streaming job instead:
without dead-letter and retry policies, which Dataflow does not support on the
subscription it reads (the job dead-letters bad input itself); an existing
inventory-sub loses them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSetup(cmd, g, cfg, wh, bqLocation, sched)
		},
	}
	cmd.Flags().StringVar(&cfg.Encoding, "encoding", "json", "schema encoding bound to the topics: json or binary")
	cmd.Flags().BoolVar(&cfg.DryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&cfg.ForDataflow, "for-dataflow", false, "inventory-sub for the Dataflow job: no dead-letter or retry policy (Dataflow does not support them)")
	cmd.Flags().Int32Var(&cfg.MaxDeliveryAttempts, "max-delivery-attempts", 5, "deliveries before inventory-sub dead-letters a message")
	cmd.Flags().StringVar(&wh, "warehouse", names.Warehouse, "warehouse: local directory or bq://PROJECT.DATASET")
	cmd.Flags().StringVar(&bqLocation, "bq-location", "US", "BigQuery dataset location")
	cmd.Flags().StringVar(&sched.TargetURL, "trigger-url", "", "nightly trigger endpoint (https://SERVICE/v1/nightly); when set, the Cloud Scheduler job is created or updated")
	cmd.Flags().StringVar(&sched.Region, "region", "us-central1", "Cloud Scheduler region")
	cmd.Flags().StringVar(&sched.TimeZone, "timezone", "UTC", "time zone of the nightly schedule")
	cmd.Flags().StringVar(&sched.Schedule, "schedule", "0 3 * * *", "cron spec of the nightly summary")
	cmd.Flags().StringVar(&sched.InvokerServiceAccount, "invoker-sa", "", "service account whose OIDC token Cloud Scheduler sends")
	return cmd
}

// runSetup is setup's run: topics, subscriptions and schemas, the warehouse
// tables wh, and the scheduler job when sched has a target; it prints what
// it did, or would do with --dry-run.
func runSetup(cmd *cobra.Command, g *globals, cfg broker.SetupConfig, wh, bqLocation string, sched trigger.SchedulerConfig) error {
	ctx := cmd.Context()
	cfg.Project = g.Project
	if cfg.ForDataflow && cmd.Flags().Changed("max-delivery-attempts") {
		return fmt.Errorf("setup: --max-delivery-attempts sets the dead-letter policy, which --for-dataflow leaves out")
	}
	admin, err := broker.NewAdmin(ctx, g.Project)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := probePubSub(ctx, admin); err != nil {
		return err
	}
	acts, err := admin.Setup(ctx, cfg)
	out := cmd.OutOrStdout()
	changed := broker.Changed(acts)
	for _, a := range acts {
		fmt.Fprintln(out, a)
	}
	if err != nil {
		return err
	}
	lines, err := warehouse.Setup(ctx, wh, bqLocation, cfg.DryRun)
	for _, l := range lines {
		fmt.Fprintln(out, l)
		if !strings.Contains(l, "unchanged") {
			changed = true
		}
	}
	if err != nil {
		return err
	}
	if sched.TargetURL != "" {
		sched.Project = g.Project
		did, err := setupSchedulerJob(ctx, out, sched, cfg.DryRun)
		if err != nil {
			return err
		}
		changed = changed || did
	}
	switch {
	case cfg.DryRun:
		fmt.Fprintln(out, "dry run: nothing was changed")
	case !changed:
		fmt.Fprintln(out, "everything is up to date: nothing changed")
	}
	return nil
}

// setupSchedulerJob creates or updates the Cloud Scheduler job of sched, or
// with dryRun only says it would, and reports whether it changed it.
func setupSchedulerJob(ctx context.Context, out io.Writer, sched trigger.SchedulerConfig, dryRun bool) (bool, error) {
	if dryRun {
		fmt.Fprintf(out, "%-12s scheduler job %s (dry run)\n", "ensure", trigger.SchedulerJobID)
		return false, nil
	}
	did, err := trigger.EnsureSchedulerJob(ctx, sched)
	if err != nil {
		return false, err
	}
	verb := "unchanged"
	if did {
		verb = "update"
	}
	fmt.Fprintf(out, "%-12s scheduler job %s (%s %s -> %s)\n", verb, trigger.SchedulerJobID, sched.Schedule, sched.TimeZone, sched.TargetURL)
	return did, nil
}
