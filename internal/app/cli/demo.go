package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/localstack"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports/trigger"
)

// demoConfig is what `inventory demo` runs on.
type demoConfig struct {
	Events, Snapshot, Thresholds string
	Warehouse, Reports           string
	Date                         string // report date; default: the snapshot's as_of date
	Timeout                      time.Duration
}

func newDemoCmd(g *globals) *cobra.Command {
	cfg := demoConfig{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole system locally on the sample data, end to end, then stop",
		Long: `demo starts the local Pub/Sub, creates the topics, subscriptions, schemas and
warehouse tables, starts the streaming job on Prism, publishes the sample CSV
in file order (the first half with the JSON publisher, the second with the
Protobuf one), waits until the stream has applied every event, prints the
alerts that reached low-stock-consumer and the keys below threshold, calls the
nightly trigger over HTTP for the sample day, waits for the nightly job, prints
a summary and the report's path, and stops everything. The warehouse and the
report stay.

The demo replaces the warehouse and reports directories only when they hold
nothing but its own last run; it refuses any other (one that inventory up
wrote into, or is using), and says what to run instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ran, err := reexecConfined(); ran {
				return err
			}
			return runDemo(cmd.Context(), g, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Events, "events", "testdata/inventory_adjustments.csv", "adjustments CSV to publish")
	f.StringVar(&cfg.Snapshot, "snapshot", "testdata/inventory_state.json", "starting stock")
	f.StringVar(&cfg.Thresholds, "thresholds", "testdata/thresholds.csv", "reorder thresholds")
	f.StringVar(&cfg.Warehouse, "warehouse", names.Warehouse, "local warehouse directory (replaced only if it holds nothing but the last demo's run)")
	f.StringVar(&cfg.Reports, "reports", "./reports-out", "report root directory (replaced only if it holds nothing but the last demo's run)")
	f.StringVar(&cfg.Date, "date", "", "nightly report date (default: the snapshot's day)")
	f.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

// runDemo runs the demo and writes its account to out.
func runDemo(ctx context.Context, g *globals, cfg demoConfig, out io.Writer) (err error) {
	d := &demoRun{cfg: cfg, out: out, t0: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	dirs, err := claimDemoDirs(cfg.Warehouse, cfg.Reports)
	if err != nil {
		return err
	}
	defer func() {
		// After the stack stopped (the deferred call below runs first).
		if ferr := dirs.finish(); ferr != nil && err == nil {
			err = ferr
		}
	}()
	if err := startPrism(ctx, out); err != nil {
		return err
	}
	if err := d.start(ctx, g, dirs); err != nil {
		return err
	}
	defer func() {
		stopCtx, c := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer c()
		if serr := d.stack.Stop(stopCtx); serr != nil && err == nil {
			err = serr
		}
	}()
	d.step(1, "local Pub/Sub on %s; setup: %d Pub/Sub resources and %d warehouse tables ready", d.stack.Emulator.Addr(), 8, 6)
	d.step(2, "streaming job running on Prism (reading inventory-sub, writing %s)", d.cfg.Warehouse)
	published, err := d.publish(ctx)
	if err != nil {
		return err
	}
	if err := d.waitApplied(ctx, published); err != nil {
		return err
	}
	if err := d.showAlerts(ctx); err != nil {
		return err
	}
	if err := d.nightly(ctx); err != nil {
		return err
	}
	report, _ := filepath.Abs(filepath.Join(d.cfg.Reports, d.cfg.Date, "index.html"))
	d.step(8, "report: %s", report)
	fmt.Fprintf(out, "          explore: %s sql --warehouse %s \"SELECT * FROM low_stock_alerts LIMIT 5\"\n", selfCommand(), shellQuote(d.cfg.Warehouse))
	return nil
}

// demoRun is one run of the demo: its configuration, the local stack it
// started, and the account it writes to out.
type demoRun struct {
	cfg   demoConfig
	out   io.Writer
	t0    time.Time
	stack *localstack.Stack
}

// step writes step n of the account, stamped with the time since the start.
func (d *demoRun) step(n int, format string, args ...any) {
	fmt.Fprintf(d.out, "[%d/8 %5.1fs] %s\n", n, time.Since(d.t0).Seconds(), fmt.Sprintf(format, args...))
}

// start takes the report date from the starting snapshot if none is set,
// and starts the local stack on the demo's directories.
func (d *demoRun) start(ctx context.Context, g *globals, dirs *demoDirs) error {
	start, err := snapshot.Read(ctx, d.cfg.Snapshot)
	if err != nil {
		return err
	}
	if d.cfg.Date == "" {
		d.cfg.Date = start.AsOf.UTC().Format(time.DateOnly)
	}
	d.stack, err = localstack.Start(ctx, localstack.Config{
		Project: g.Project, EmulatorAddr: "127.0.0.1:0", Warehouse: d.cfg.Warehouse, Reports: d.cfg.Reports,
		Snapshot: d.cfg.Snapshot, Thresholds: d.cfg.Thresholds, TriggerAddr: "127.0.0.1:0", TimeZone: "UTC",
		Logger: g.Logger, Holder: "inventory demo", WarehouseClaim: dirs.claim,
	})
	return err
}

// publish publishes the events in file order, the first half with the JSON
// publisher and the rest as Protobuf, stores the refused rows in
// dead_letters, and reports them (step 3). It returns how many were
// published.
//
// In file order, one at a time (broker.PublishConfig.InOrder): the
// client's concurrent batches would reach the topic in a different order
// each run, and the stream judges each key's events in the order they
// arrive. On-hand ends the same in any order, but the on-hand an alert
// shows and whether a short dip below threshold raises one at all depend
// on it: three runs printed 30, 28 and 30 alerts. The sample is in
// event-time order, so the stream also agrees with the nightly job, which
// replays each key in event-time order.
func (d *demoRun) publish(ctx context.Context) (int, error) {
	first, second, err := splitCSV(d.cfg.Events)
	if err != nil {
		return 0, err
	}
	var rejected bytes.Buffer
	var pubs [2]broker.PublishStats
	dead := &deadLetterSink{name: d.cfg.Events}
	for i, part := range [][]byte{first, second} {
		format := []string{"json", "proto"}[i]
		pubs[i], err = broker.NewPublisher(d.stack.Admin, broker.PublishConfig{
			Topic: names.Topic, DeadLetterTopic: names.DeadLetterTopic, Format: format,
			Name: d.cfg.Events, Errors: &rejected, OnReject: dead.add, InOrder: true}).Publish(ctx, bytes.NewReader(part))
		if err != nil {
			return 0, err
		}
	}
	// The refused rows never reach the stream: they go to dead_letters here.
	if err := dead.store(ctx, d.cfg.Warehouse); err != nil {
		return 0, fmt.Errorf("demo: %w", err)
	}
	d.step(3, "published %s in file order: %d rows as JSON, %d as Protobuf; %d bad rows refused, dead-lettered and stored in dead_letters",
		d.cfg.Events, pubs[0].Published, pubs[1].Published, pubs[0].Rejected+pubs[1].Rejected)
	for _, l := range strings.Split(strings.TrimSpace(rejected.String()), "\n") {
		if l != "" {
			fmt.Fprintf(d.out, "          %s\n", l)
		}
	}
	return pubs[0].Published + pubs[1].Published, nil
}

// waitApplied waits, by counting, until the stream has taken every one of
// the published events (step 4), showing progress on a terminal.
func (d *demoRun) waitApplied(ctx context.Context, published int) error {
	applied, err := waitFor(ctx, func() (int64, bool, error) {
		n, err := warehouse.QueryInt(ctx, d.cfg.Warehouse, "SELECT count(DISTINCT event_id) FROM adjustments")
		return n, n >= int64(published), err
	}, func(n int64) {
		if isTerminal(d.out) {
			fmt.Fprintf(d.out, "\r          applied %d/%d", n, published)
		}
	})
	if isTerminal(d.out) {
		fmt.Fprintln(d.out)
	}
	if err != nil {
		return fmt.Errorf("demo: waiting for the stream: %w", err)
	}
	st, err := countBy(ctx, d.cfg.Warehouse, "SELECT status, count(DISTINCT event_id) FROM adjustments GROUP BY status")
	if err != nil {
		return err
	}
	d.step(4, "the stream took %d/%d events (adjustments): %d applied, %d superseded by a later count, %d duplicates",
		applied, published, st["APPLIED"], st["SUPERSEDED"], st["DUPLICATE"])
	return nil
}

// countBy runs sql, which returns (name, count) rows, and returns the
// counts by name.
func countBy(ctx context.Context, wh, sql string) (map[string]int64, error) {
	_, rows, err := warehouse.QueryTable(ctx, wh, sql)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		if len(r) == 2 {
			name, _ := r[0].(string)
			out[name] = warehouse.AsInt(r[1])
		}
	}
	return out, nil
}

// showAlerts lists the alerts that reached low-stock-consumer, once they
// match the table, and the keys below threshold now (step 5).
func (d *demoRun) showAlerts(ctx context.Context) error {
	alerts, err := pullAlerts(ctx, d.stack, d.cfg.Warehouse)
	if err != nil {
		return err
	}
	bySeverity := map[string]int64{}
	for _, a := range alerts {
		bySeverity[a.GetSeverity().String()]++
	}
	stored, err := countBy(ctx, d.cfg.Warehouse, "SELECT severity, count(DISTINCT alert_id) FROM low_stock_alerts GROUP BY severity")
	if err != nil {
		return err
	}
	agree := "as low_stock_alerts holds"
	if !maps.Equal(bySeverity, stored) {
		agree = fmt.Sprintf("but low_stock_alerts holds %s", severities(stored))
	}
	d.step(5, "%d alerts reached low-stock-consumer: %s, %s", len(alerts), severities(bySeverity), agree)
	for _, a := range alerts {
		fmt.Fprintf(d.out, "          %-9s %s@%s on_hand=%d threshold=%d (event %s at %s)\n", a.GetSeverity(), a.GetSku(), a.GetLocationId(),
			a.GetOnHand(), a.GetThreshold(), a.GetEventId(), a.GetEventTime())
	}
	fmt.Fprintln(d.out, "          below threshold now:")
	return warehouse.Query(ctx, d.cfg.Warehouse, belowThresholdSQL, "table", indent(d.out))
}

// nightly runs the nightly summary through the trigger's HTTP endpoint,
// waits for it (steps 6 and 7) and shows the summary.
func (d *demoRun) nightly(ctx context.Context) error {
	base := d.stack.TriggerURL
	run, err := triggerNightly(ctx, base, d.cfg.Date)
	if err != nil {
		return err
	}
	d.step(6, "POST %s/v1/nightly?date=%s -> job %s (%s)", base, d.cfg.Date, run.JobID, run.State)
	run, err = waitNightly(ctx, base, d.cfg.Date)
	if err != nil {
		return err
	}
	if run.State != trigger.StateDone {
		return fmt.Errorf("demo: nightly job %s: %s %s", run.JobID, run.State, run.Error)
	}
	d.step(7, "nightly job done: %s", run.Result)
	if err := warehouse.Query(ctx, d.cfg.Warehouse, fmt.Sprintf(summarySQL, d.cfg.Date), "table", indent(d.out)); err != nil {
		return err
	}
	return d.crossCheck(ctx)
}

// crossCheck compares the nightly summary's counts with the stream's
// tables for the report date, and says whether they agree: the adjustments
// applied, and the alerts that took a key LOW or OUT.
func (d *demoRun) crossCheck(ctx context.Context) error {
	nightly, err := countBy(ctx, d.cfg.Warehouse, fmt.Sprintf(`SELECT 'applied', sum(events) FROM daily_summary WHERE report_date = DATE '%[1]s'
UNION ALL SELECT 'alerts', sum(alerts_raised) FROM daily_summary WHERE report_date = DATE '%[1]s'`, d.cfg.Date))
	if err != nil {
		return err
	}
	stream, err := countBy(ctx, d.cfg.Warehouse, fmt.Sprintf(`SELECT 'applied', count(DISTINCT event_id) FROM adjustments
  WHERE status = 'APPLIED' AND CAST(event_time AS DATE) = DATE '%[1]s'
UNION ALL SELECT 'alerts', count(DISTINCT alert_id) FROM low_stock_alerts
  WHERE severity IN ('LOW', 'OUT') AND CAST(event_time AS DATE) = DATE '%[1]s'`, d.cfg.Date))
	if err != nil {
		return err
	}
	counts := fmt.Sprintf("%d adjustments applied (adjustments), %d LOW or OUT alerts (low_stock_alerts)", stream["applied"], stream["alerts"])
	if maps.Equal(nightly, stream) {
		fmt.Fprintf(d.out, "          the stream's tables agree for %s: %s\n", d.cfg.Date, counts)
		return nil
	}
	fmt.Fprintf(d.out, "          the stream's tables differ for %s: %s; the stream judges each key's events in the order they arrived, the nightly job in event-time order\n",
		d.cfg.Date, counts)
	return nil
}

// severities lists alert counts by severity: "12 LOW, 0 OUT, 18 RECOVERED".
func severities(n map[string]int64) string {
	return fmt.Sprintf("%d LOW, %d OUT, %d RECOVERED", n["LOW"], n["OUT"], n["RECOVERED"])
}

const belowThresholdSQL = `SELECT sku, location_id, on_hand, threshold, severity FROM (
  SELECT * FROM stock_levels
  QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1)
WHERE on_hand < threshold ORDER BY on_hand, sku, location_id`

// summarySQL is the nightly summary of a date, labelled with what each
// number counts: adjustments are events, received and sold are units.
const summarySQL = `SELECT count(*) AS keys, sum(events) AS adjustments_applied,
  sum(received) AS units_received, -sum(sold) AS units_sold,
  sum(alerts_raised) AS low_or_out_alerts, count(*) FILTER (WHERE closing_on_hand <= 0) AS keys_out_of_stock,
  count(*) FILTER (WHERE NOT reconciled) AS stream_mismatches
FROM daily_summary WHERE report_date = DATE '%s'`

// splitCSV returns two CSVs, each with the header, holding the first and the
// second half of the rows of path. The second has a blank line for each row
// of the first: encoding/csv skips blank lines but counts them, so every
// row keeps its line number in path, in error messages and dead letters.
func splitCSV(path string) ([]byte, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: %w", err)
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n")+"\n", "\n")
	lines = lines[:len(lines)-1]
	if len(lines) < 2 {
		return nil, nil, fmt.Errorf("demo: %s has no rows", path)
	}
	header, rows := lines[0], lines[1:]
	half := len(rows) / 2
	return []byte(header + strings.Join(rows[:half], "")), []byte(header + strings.Repeat("\n", half) + strings.Join(rows[half:], "")), nil
}

// waitFor polls check until it reports done, showing progress.
func waitFor(ctx context.Context, check func() (int64, bool, error), progress func(int64)) (int64, error) {
	last := int64(-1)
	for {
		n, done, err := check()
		if err != nil {
			return n, err
		}
		if n != last {
			progress(n)
			last = n
		}
		if done {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// indent prefixes every line written through it, to nest tables in the
// demo's account.
func indent(w io.Writer) io.Writer { return &indenter{w: w, bol: true} }

type indenter struct {
	w   io.Writer
	bol bool
}

func (d *indenter) Write(p []byte) (int, error) {
	for _, c := range p {
		if d.bol {
			if _, err := io.WriteString(d.w, "          "); err != nil {
				return 0, err
			}
		}
		if _, err := d.w.Write([]byte{c}); err != nil {
			return 0, err
		}
		d.bol = c == '\n'
	}
	return len(p), nil
}
