package nightly

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
	"github.com/inventory-events/inventory/reports"
	"github.com/inventory-events/inventory/transforms/summary"
)

func TestMain(m *testing.M) { ptest.Main(m) }

const fixtures = "../../testdata/nightly/"

var day = civil.Date{Year: 2026, Month: time.March, Day: 10}

func ptr[T any](v T) *T { return &v }

// want is the fixture's summary, worked out by hand (see the fixture's
// README): opening from the snapshot at 22:00 the day before plus a0.
var want = map[string]reports.Row{
	// 18 -5 (08:00) +10 (09:00) -4 (11:00, listed after the count) = 19;
	// COUNTED 20 at 12:00 (+1); -12 at 15:00 = 8 (LOW); the redelivered a5
	// changes nothing; +1 = 9. The invalid bad1 and a7 (next day) are out.
	// The trends add a0's 2 units the day before (since the snapshot at
	// 22:00): 23 units over 2 days.
	"SKU-A@S1": {SKU: "SKU-A", LocationID: "S1", OpeningOnHand: 18, ClosingOnHand: 9, Received: 10, Sold: -21,
		Returned: 1, CountedDelta: 1, NetChange: -9, MinOnHand: 8, Events: 6, AlertsRaised: 1,
		DaysOfCover: ptr(9.0 / (23.0 / 2)), Threshold: 10, StreamingOnHand: ptr[int64](9), Reconciled: true,
		Sold7d: 23, Sold28d: 23},
	// 5 -5 = 0 at 06:00 (OUT) until +6 at 10:30 (270 min); -2 = 4 (OK at
	// threshold 4); -4 = 0 at 22:00 (OUT) to midnight (120 min).
	"SKU-B@S1": {SKU: "SKU-B", LocationID: "S1", OpeningOnHand: 5, ClosingOnHand: 0, Received: 6, Sold: -9,
		Damaged: -2, NetChange: -5, MinOnHand: 0, Events: 4, AlertsRaised: 2, MinutesOutOfStock: 390,
		DaysOfCover: ptr(0.0), Threshold: 4, StreamingOnHand: ptr[int64](0), Reconciled: true,
		Sold7d: 9, Sold28d: 9},
	// Opens LOW (8 < 10): +5 = 13 (recovery), -3 = 10, -1 = 9 (LOW). The
	// stream stopped at 10: a mismatch.
	"SKU-C@S2": {SKU: "SKU-C", LocationID: "S2", OpeningOnHand: 8, ClosingOnHand: 9, TransferIn: 5,
		TransferOut: -3, Adjusted: -1, NetChange: 1, MinOnHand: 8, Events: 3, AlertsRaised: 1, Threshold: 10,
		StreamingOnHand: ptr[int64](10)},
	// No snapshot: the first event makes it 3, LOW; the stream never saw it.
	"SKU-D@S2": {SKU: "SKU-D", LocationID: "S2", ClosingOnHand: 3, Received: 3, NetChange: 3, MinOnHand: 3,
		Events: 1, AlertsRaised: 1, Threshold: 10},
	// Out of stock all day, no events: nothing to reconcile.
	"SKU-E@S3": {SKU: "SKU-E", LocationID: "S3", MinutesOutOfStock: 1440, Threshold: 10, Reconciled: true},
}

// seedStream writes the streaming job's stock_levels for the fixture.
func seedStream(t *testing.T, wh string) {
	t.Helper()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w, err := local.Open(wh)
	if err != nil {
		t.Fatal(err)
	}
	rows := []warehouse.StockLevelRow{
		{SKU: "SKU-A", LocationID: "S1", OnHand: 9, EventID: "a6", EventTime: at("2026-03-10T16:00:00Z"), ProcessedAt: at("2026-03-10T16:00:01Z")},
		{SKU: "SKU-B", LocationID: "S1", OnHand: 0, EventID: "b4", EventTime: at("2026-03-10T22:00:00Z"), ProcessedAt: at("2026-03-10T22:00:01Z")},
		{SKU: "SKU-B", LocationID: "S1", OnHand: 5, EventID: "b9", EventTime: at("2026-03-11T02:00:00Z"), ProcessedAt: at("2026-03-11T02:00:01Z")},
		{SKU: "SKU-C", LocationID: "S2", OnHand: 10, EventID: "c2", EventTime: at("2026-03-10T13:00:00Z"), ProcessedAt: at("2026-03-10T13:00:01Z")},
	}
	if _, err := w.Write(context.Background(), warehouse.Rows(rows)); err != nil {
		t.Fatal(err)
	}
}

func fixtureConfig(t *testing.T, wh, out string) Config {
	return Config{Date: day, Input: fixtures + "adjustments.csv", Warehouse: wh, Snapshot: fixtures + "inventory_state.json",
		Thresholds: fixtures + "thresholds.csv", Output: out, Shards: 3, ChunkBytes: 300}
}

// dailySummary reads the date's daily_summary rows back from the warehouse.
func dailySummary(t *testing.T, wh string, d civil.Date) map[string]map[string]any {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), wh,
		"SELECT * FROM daily_summary WHERE report_date = DATE '"+d.String()+"'")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range rows {
		k := r["sku"].(string) + "@" + r["location_id"].(string)
		if _, dup := out[k]; dup {
			t.Errorf("daily_summary %s has %s twice", d, k)
		}
		out[k] = r
	}
	return out
}

func checkRow(t *testing.T, key string, got map[string]any, w reports.Row, runID string) {
	t.Helper()
	ints := map[string]int64{"opening_on_hand": w.OpeningOnHand, "closing_on_hand": w.ClosingOnHand,
		"received": w.Received, "sold": w.Sold, "returned": w.Returned, "damaged": w.Damaged,
		"adjusted": w.Adjusted, "transfer_in": w.TransferIn, "transfer_out": w.TransferOut,
		"counted_delta": w.CountedDelta, "net_change": w.NetChange, "min_on_hand": w.MinOnHand,
		"events": w.Events, "alerts_raised": w.AlertsRaised, "threshold": w.Threshold,
		"sold_7d": w.Sold7d, "sold_28d": w.Sold28d}
	for col, v := range ints {
		if got[col] != v {
			t.Errorf("%s %s = %v, want %d", key, col, got[col], v)
		}
	}
	if m := got["minutes_out_of_stock"]; m != w.MinutesOutOfStock {
		t.Errorf("%s minutes_out_of_stock = %v, want %v", key, m, w.MinutesOutOfStock)
	}
	switch c := got["days_of_cover"].(type) {
	case nil:
		if w.DaysOfCover != nil {
			t.Errorf("%s days_of_cover = NULL, want %v", key, *w.DaysOfCover)
		}
	case float64:
		if w.DaysOfCover == nil || c-*w.DaysOfCover > 1e-9 || *w.DaysOfCover-c > 1e-9 {
			t.Errorf("%s days_of_cover = %v, want %v", key, c, w.DaysOfCover)
		}
	}
	if s := got["streaming_on_hand"]; (s == nil) != (w.StreamingOnHand == nil) || (s != nil && s != *w.StreamingOnHand) {
		t.Errorf("%s streaming_on_hand = %v, want %v", key, s, w.StreamingOnHand)
	}
	if got["reconciled"] != w.Reconciled {
		t.Errorf("%s reconciled = %v, want %v", key, got["reconciled"], w.Reconciled)
	}
	if got["run_id"] != runID {
		t.Errorf("%s run_id = %v, want %s", key, got["run_id"], runID)
	}
}

func reportRuns(t *testing.T, wh string) []map[string]any {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), wh, "SELECT * FROM report_runs ORDER BY report_date")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestRunFixture runs the job on the fixture twice (a rerun replaces the
// date), then the next day from the first day's closing stock.
func TestRunFixture(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	ctx := context.Background()
	wh, out := t.TempDir(), t.TempDir()
	seedStream(t, wh)
	cfg := fixtureConfig(t, wh, out)
	input, err := os.ReadFile(cfg.Input)
	if err != nil {
		t.Fatal(err)
	}
	body := int64(len(input) - bytes.IndexByte(input, '\n') - 1) // the ranges follow the header

	for _, runID := range []string{"run-1", "run-2"} {
		cfg.RunID = runID
		meter := summary.NewMeter()
		cfg.Meter = meter.ID()
		res, err := Run(ctx, cfg)
		meter.Close()
		if err != nil {
			t.Fatalf("Run %s: %v", runID, err)
		}
		if got := meter.Bytes.Load(); got != body {
			t.Errorf("Run %s: the meter counted %d bytes read, want the input's %d after its header", runID, got, body)
		}
		if res.Keys != 5 || res.Events != 14 || res.Mismatch != 2 || res.Invalid != 1 {
			t.Errorf("Run %s = %+v, want 5 keys, 14 events, 2 mismatches, 1 invalid row", runID, res)
		}
		got := dailySummary(t, wh, day)
		if len(got) != len(want) {
			t.Errorf("after %s: daily_summary has %d rows, want %d", runID, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok {
				t.Errorf("after %s: no daily_summary row for %s", runID, k)
			} else {
				checkRow(t, k, g, w, runID)
			}
		}
		runs := reportRuns(t, wh)
		if len(runs) != 1 || runs[0]["run_id"] != runID || runs[0]["status"] != warehouse.RunSucceeded ||
			runs[0]["keys"] != int64(5) || runs[0]["mismatches"] != int64(2) {
			t.Errorf("after %s: report_runs = %v, want one SUCCEEDED row of %s", runID, runs, runID)
		}
	}

	dir := filepath.Join(out, "2026-03-10")
	for _, name := range []string{indexFile, CSVFile, jsonFile, markdownFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("report file %s: %v", name, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, jsonFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := reports.ReadJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Keys != 5 || rep.Totals.Sold != -30 || rep.Totals.KeysStockedOut != 2 || len(rep.Mismatches) != 2 {
		t.Errorf("summary.json totals = %+v, mismatches %d", rep.Totals, len(rep.Mismatches))
	}
	if len(rep.Charts) == 0 || len(rep.StockOuts) != 2 || rep.StockOuts[0].SKU != "SKU-E" {
		t.Errorf("summary.json: %d charts, stock-outs %v; want charts and SKU-E first", len(rep.Charts), rep.StockOuts)
	}

	// The next day opens where this day closed (from the same data, not
	// from this day's report), and a7 (01:00) sells 3 of SKU-A's 9.
	next := cfg
	next.Date, next.RunID = day.AddDays(1), "run-3"
	if _, err := Run(ctx, next); err != nil {
		t.Fatalf("Run next day: %v", err)
	}
	got := dailySummary(t, wh, next.Date)
	a := got["SKU-A@S1"]
	if a["opening_on_hand"] != int64(9) || a["closing_on_hand"] != int64(6) || a["events"] != int64(1) {
		t.Errorf("next day SKU-A = %v, want opening 9, closing 6, 1 event", a)
	}
	// Trends over the three days since the snapshot (22:00 the day
	// before): SKU-A sold 2, 21 then 3.
	if cover, _ := a["days_of_cover"].(float64); a["sold_7d"] != int64(26) || a["sold_28d"] != int64(26) || math.Abs(cover-6/(26.0/3)) > 1e-9 {
		t.Errorf("next day SKU-A trends = sold_7d %v, sold_28d %v, days_of_cover %v; want 26, 26, 6/(26/3)",
			a["sold_7d"], a["sold_28d"], a["days_of_cover"])
	}
	if b := got["SKU-B@S1"]; b["sold_7d"] != int64(9) || b["days_of_cover"] != 0.0 {
		t.Errorf("next day SKU-B trends = sold_7d %v, days_of_cover %v; want 9, 0", b["sold_7d"], b["days_of_cover"])
	}
	f, err = os.Open(filepath.Join(out, next.Date.String(), jsonFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err = reports.ReadJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.TrendDays != 3 || rep.Totals.Sold7d != 35 || len(rep.Days) != reports.TrendDays ||
		rep.Days[26] != (reports.Day{Date: "2026-03-10", Reported: true, Keys: 5, UnitsSold: 30, KeysBelow: 5, KeysOut: 2}) {
		t.Errorf("next day summary.json: totals %+v, days %+v", rep.Totals, rep.Days)
	}
	if d := got["SKU-D@S2"]; d["opening_on_hand"] != int64(3) || d["closing_on_hand"] != int64(3) {
		t.Errorf("next day SKU-D = %v, want opening 3, closing 3", d)
	}
	if n := len(reportRuns(t, wh)); n != 2 {
		t.Errorf("report_runs has %d rows after two dates, want 2", n)
	}
}

// TestWarehouseSource reads the day's adjustments from the local
// warehouse (as the streaming job wrote them) instead of a CSV.
func TestWarehouseSource(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	ctx := context.Background()
	wh, out := t.TempDir(), t.TempDir()
	seedStream(t, wh)
	seedAdjustments(t, wh)
	cfg := fixtureConfig(t, wh, out)
	cfg.Input, cfg.RunID = "", "wh-1"
	meter := summary.NewMeter()
	defer meter.Close()
	cfg.Meter = meter.ID()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := meter.Rows.Load(); got == 0 || got != res.Read {
		t.Errorf("the meter counted %d rows read, want the job's %d", got, res.Read)
	}
	got := dailySummary(t, wh, day)
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("no daily_summary row for %s", k)
		} else {
			checkRow(t, k, g, w, "wh-1")
		}
	}
}

// TestRunRange backfills two days from the warehouse, in order, after
// refusing a range that starts before the first day with data.
func TestRunRange(t *testing.T) {
	slowtest.Skip(t, "Prism jobs")
	ctx := context.Background()
	wh, out := t.TempDir(), t.TempDir()
	cfg := fixtureConfig(t, wh, out)
	cfg.Input = ""
	var before *beforeDataError
	if err := checkRange(ctx, cfg, day, day); !errors.As(err, &before) || !before.Empty {
		t.Errorf("CheckRange on an empty warehouse = %v, want a BeforeDataError saying it is empty", err)
	}
	seedStream(t, wh)
	seedAdjustments(t, wh)
	// The first adjustment (a0) is at 22:00 on 2026-03-09.
	err := checkRange(ctx, cfg, day.AddDays(-2), day)
	if !errors.As(err, &before) || before.Earliest != day.AddDays(-1) ||
		!strings.Contains(err.Error(), "2026-03-08 is before the first day with data in the warehouse (2026-03-09)") {
		t.Errorf("CheckRange from the day before the data = %v, want a BeforeDataError naming 2026-03-09", err)
	}
	for _, bad := range [][2]civil.Date{{day, day.AddDays(-1)}, {day, day.AddDays(maxRangeDays)}} {
		if err := checkRange(ctx, cfg, bad[0], bad[1]); err == nil || errors.As(err, &before) {
			t.Errorf("CheckRange(%s, %s) = %v, want a range error", bad[0], bad[1], err)
		}
	}
	var order []string
	res, err := RunRange(ctx, cfg, day, day.AddDays(1), func(r RunResult) { order = append(order, r.Date) })
	if err != nil {
		t.Fatalf("RunRange: %v", err)
	}
	if len(res) != 2 || strings.Join(order, " ") != "2026-03-10 2026-03-11" || res[0].RunID == res[1].RunID {
		t.Errorf("RunRange ran %v (%+v), want 2026-03-10 then 2026-03-11 with their own run ids", order, res)
	}
	// The second day opened where the first closed.
	if a := dailySummary(t, wh, day.AddDays(1))["SKU-A@S1"]; a["opening_on_hand"] != int64(9) || a["sold_7d"] != int64(26) {
		t.Errorf("2026-03-11 SKU-A = %v, want opening 9, sold_7d 26", a)
	}
	if n := len(reportRuns(t, wh)); n != 2 {
		t.Errorf("report_runs has %d rows, want 2", n)
	}
}

// seedAdjustments writes the fixture's adjustments into the warehouse as
// the streaming job would (the invalid row dead-lettered, the repeat a
// DUPLICATE).
func seedAdjustments(t *testing.T, wh string) {
	t.Helper()
	data, err := os.ReadFile(fixtures + "adjustments.csv")
	if err != nil {
		t.Fatal(err)
	}
	var rows []warehouse.AdjustmentRow
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n")[1:] {
		f := strings.Split(line, ",")
		if f[0] == "bad1" {
			continue // dead-lettered by the stream
		}
		tm, err := time.Parse(time.RFC3339, f[1])
		if err != nil {
			t.Fatal(err)
		}
		var q int64
		if _, err := fmtSscan(f[5], &q); err != nil {
			t.Fatal(err)
		}
		status := warehouse.StatusApplied
		if seen[f[0]] {
			status = warehouse.StatusDuplicate
		}
		seen[f[0]] = true
		rows = append(rows, warehouse.AdjustmentRow{EventID: f[0], EventTime: tm, SKU: f[2], LocationID: f[3],
			Reason: f[4], Quantity: q, Source: f[6], Status: status, IngestTime: tm})
	}
	w, err := local.Open(wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(context.Background(), warehouse.Rows(rows)); err != nil {
		t.Fatal(err)
	}
}

// TestDataflowDryRun translates the production job (BigQuery warehouse,
// GCS output) for Dataflow without submitting it.
func TestDataflowDryRun(t *testing.T) {
	for name, v := range map[string]string{"dry_run": "true", "project": "test-project", "region": "europe-west1",
		"staging_location": "gs://test-bucket/staging", "job_name": "nightly-dry-run", "environment_type": "DOCKER"} {
		old := flag.Lookup(name).Value.String()
		if err := flag.Set(name, v); err != nil {
			t.Fatalf("flag %s: %v", name, err)
		}
		t.Cleanup(func() { flag.Set(name, old) })
	}
	p, s := beam.NewPipelineWithRoot()
	Build(s, Config{Date: day, TimeZone: "Europe/Paris", Warehouse: "bq://test-project.inventory",
		Snapshot: "gs://test-bucket/inventory_state.json", Thresholds: "gs://test-bucket/thresholds.csv",
		Output: "gs://test-bucket/reports", RunID: "dry"})
	var logged capture
	beamlog.SetLogger(&logged)
	defer beamlog.SetLogger(&beamlog.Standard{})
	if _, err := dataflow.Execute(context.Background(), p); err != nil {
		t.Fatalf("dataflow dry run: %v", err)
	}
	job := logged.String()
	for _, want := range []string{"Dry-run: not submitting job!", "JOB_TYPE_BATCH", "nightly/summary.Summarize",
		"nightly.publishFn", "summary.warehouseReadFn"} {
		if !strings.Contains(job, want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
}

// capture is a Beam logger that keeps the messages.
type capture struct {
	mu sync.Mutex
	b  strings.Builder
}

func (c *capture) Log(_ context.Context, _ beamlog.Severity, _ int, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.WriteString(msg)
	c.b.WriteByte('\n')
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// TestStartFailure runs a job in the background that cannot read its
// input: Wait returns the error and report_runs says FAILED.
func TestStartFailure(t *testing.T) {
	wh := t.TempDir()
	cfg := fixtureConfig(t, wh, t.TempDir())
	cfg.Input, cfg.RunID = filepath.Join(t.TempDir(), "missing-*.csv"), "doomed"
	job := start(context.Background(), cfg)
	select {
	case <-job.Done():
	case <-time.After(5 * time.Minute):
		t.Fatal("the job did not finish")
	}
	if _, err := job.wait(); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Wait = %v, want the missing input", err)
	}
	runs := reportRuns(t, wh)
	if len(runs) != 1 || runs[0]["status"] != warehouse.RunFailed || runs[0]["run_id"] != "doomed" ||
		!strings.Contains(runs[0]["error"].(string), "no such file") || runs[0]["finished_at"] == nil {
		t.Errorf("report_runs = %v, want one FAILED row with the error", runs)
	}
}

func TestWindow(t *testing.T) {
	// The day clocks go forward in New York has 23 hours.
	c := Config{Date: civil.Date{Year: 2026, Month: time.March, Day: 8}, TimeZone: "America/New_York"}
	start, end, err := c.Window()
	if err != nil {
		t.Fatal(err)
	}
	if got := end.Sub(start); got != 23*time.Hour || start.UTC().Format(time.RFC3339) != "2026-03-08T05:00:00Z" {
		t.Errorf("window = %v + %v, want 2026-03-08T05:00:00Z + 23h", start.UTC(), got)
	}
	if _, _, err := (Config{Date: day, TimeZone: "Mars/Olympus"}).Window(); err == nil {
		t.Error("an unknown time zone is accepted")
	}
	// 01:30 UTC on March 10 is still March 9 in New York: yesterday is March 8.
	y, err := Yesterday("America/New_York", time.Date(2026, 3, 10, 1, 30, 0, 0, time.UTC))
	if err != nil || y != (civil.Date{Year: 2026, Month: time.March, Day: 8}) {
		t.Errorf("Yesterday = %v, %v; want 2026-03-08", y, err)
	}
}
