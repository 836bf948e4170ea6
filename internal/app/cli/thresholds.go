package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/rulechange"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/thresholds"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

func newThresholdsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "thresholds",
		Short: "Change reorder thresholds live, and list them",
		Long: `thresholds changes the reorder threshold of a (sku, location) or of every
location of a SKU (LOCATION "*") while the streaming job runs: the change goes
to the threshold-updates topic, the job applies it within seconds, re-judges
the stock of the keys it concerns at once (a LOW or RECOVERED alert if their
severity changes) and records it in the warehouse table threshold_changes,
from which a restarted job restores it over the thresholds file.`,
	}
	cmd.AddCommand(newThresholdsSetCmd(g), newThresholdsListCmd(g))
	return cmd
}

func newThresholdsSetCmd(g *globals) *cobra.Command {
	var (
		topic, wh, by string
		wait          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set SKU LOCATION N",
		Short: "Set the reorder threshold of SKU at LOCATION (* for every location) to N",
		Example: `  inventory thresholds set SKU-0001 STORE-001 40
  inventory thresholds set --wait=0 SKU-0001 '*' 25`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := newChange(args[0], args[1], args[2], by, time.Now())
			if err != nil {
				return err
			}
			// A stopped Pub/Sub is said at once, not after a minute as a
			// hint to run setup.
			if err := probeProject(ctx, g.Project); err != nil {
				return fmt.Errorf("thresholds set: %w", err)
			}
			warnUnseen(ctx, cmd.ErrOrStderr(), wh, &c)
			if err := publishChange(ctx, g.Project, topic, &c); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "published change %s: %s %s -> %d\n", c.ID, c.SKU, c.LocationID, c.Threshold)
			if wait <= 0 {
				return nil
			}
			row, err := waitApplied(ctx, wh, c.ID, wait)
			if err != nil {
				return err
			}
			prev := "no rule"
			if row["previous_threshold"] != nil {
				prev = fmt.Sprint(row["previous_threshold"])
			}
			fmt.Fprintf(out, "applied by the streaming job: %s %s %s -> %d\n", c.SKU, c.LocationID, prev, c.Threshold)
			return nil
		},
	}
	f := cmd.Flags()
	// Flags go before the arguments, so that a negative N is read as a
	// (refused) threshold, not as a flag.
	f.SetInterspersed(false)
	f.StringVar(&topic, "topic", broker.DefaultNames().ThresholdTopic, "threshold updates topic")
	f.StringVar(&wh, "warehouse", "./warehouse", "warehouse to watch for the job recording the change (local directory or bq://PROJECT.DATASET)")
	f.DurationVar(&wait, "wait", time.Minute, "how long to wait for the streaming job to apply the change (0: do not wait)")
	f.StringVar(&by, "by", "", "who makes the change (default: $USER@host)")
	return cmd
}

// newChange validates a change as typed on the command line
// (rulechange.New, shared with the operations page).
func newChange(sku, loc, n, by string, now time.Time) (ledger.Change, error) {
	return rulechange.New(sku, loc, n, by, now)
}

// probeProject runs probePubSub with a client of project.
func probeProject(ctx context.Context, project string) error {
	admin, err := broker.NewAdmin(ctx, project)
	if err != nil {
		return err
	}
	defer admin.Close()
	return probePubSub(ctx, admin)
}

// warnUnseen warns on w when the warehouse wh never saw c's key
// (rulechange.Unseen).
func warnUnseen(ctx context.Context, w io.Writer, wh string, c *ledger.Change) {
	if msg := rulechange.Unseen(ctx, wh, c); msg != "" {
		fmt.Fprintf(w, "thresholds set: warning: %s\n", msg)
	}
}

// publishChange publishes c to topic in the topic's schema encoding
// (rulechange.Publish, shared with the operations page).
func publishChange(ctx context.Context, project, topic string, c *ledger.Change) error {
	return rulechange.Publish(ctx, project, topic, c)
}

// waitApplied polls the warehouse until the job has recorded change id.
func waitApplied(ctx context.Context, wh, id string, wait time.Duration) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		rows, err := warehouse.QueryRows(ctx, wh, fmt.Sprintf(
			"SELECT previous_threshold, applied FROM threshold_changes WHERE change_id = '%s'", id))
		if err == nil && len(rows) > 0 {
			return rows[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("thresholds set: change %s published, but the streaming job has not recorded it in %s within %s: is it running? (it applies the change when it starts)", id, wh, wait)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func newThresholdsListCmd(*globals) *cobra.Command {
	var (
		file, wh string
		def      int64
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the reorder threshold rules: the thresholds file with the live changes over it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			base, err := thresholds.Read(ctx, file, def)
			if err != nil {
				return fmt.Errorf("thresholds list: %w", err)
			}
			rows, err := warehouse.QueryRows(ctx, wh, `SELECT change_id, sku, location_id, threshold, changed_by, changed_at
FROM threshold_changes`)
			if err != nil {
				return fmt.Errorf("thresholds list: %w", err)
			}
			return writeRules(cmd.OutOrStdout(), base, rows)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "thresholds", "testdata/thresholds.csv", "thresholds file the streaming job started from")
	f.Int64Var(&def, "default-threshold", ledger.DefaultThreshold, "threshold of keys no rule names")
	f.StringVar(&wh, "warehouse", "./warehouse", "warehouse holding threshold_changes (local directory or bq://PROJECT.DATASET)")
	return cmd
}

type listedRule struct {
	sku, loc   string
	threshold  int64
	source     string
	by, at, id string
}

func writeRules(w io.Writer, base *ledger.Thresholds, changes []map[string]any) error {
	live := &ledger.Live{}
	who := map[string][2]string{}
	for _, r := range changes {
		at, _ := r["changed_at"].(time.Time)
		c := ledger.Change{ID: fmt.Sprint(r["change_id"]), SKU: fmt.Sprint(r["sku"]), LocationID: fmt.Sprint(r["location_id"]), At: at.UnixMicro()}
		c.Threshold, _ = r["threshold"].(int64)
		live.Set(&c, nil)
		who[c.ID] = [2]string{fmt.Sprint(r["changed_by"]), at.UTC().Format(time.RFC3339)}
	}
	rules := map[[2]string]listedRule{}
	for _, r := range base.Rules() {
		rules[[2]string{r.SKU, r.LocationID}] = listedRule{sku: r.SKU, loc: r.LocationID, threshold: r.Threshold, source: "file"}
	}
	for _, c := range live.Changes() {
		rules[[2]string{c.SKU, c.LocationID}] = listedRule{sku: c.SKU, loc: c.LocationID, threshold: c.Threshold, source: "live",
			by: who[c.ID][0], at: who[c.ID][1], id: c.ID}
	}
	keys := make([][2]string, 0, len(rules))
	for k := range rules {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SKU\tLOCATION\tTHRESHOLD\tSOURCE\tCHANGED BY\tCHANGED AT")
	for _, k := range keys {
		r := rules[k]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.sku, r.loc, r.threshold, r.source, cmp.Or(r.by, "-"), cmp.Or(r.at, "-"))
	}
	fmt.Fprintf(tw, "(default)\t*\t%d\tfile\t-\t-\n", base.Default)
	return tw.Flush()
}
