package nightly

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/oracle"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
	"github.com/inventory-events/inventory/reports"
)

// history is a warehouse's worth of data, as the stream would have stored
// it: 30 days of adjustments ending yesterday (relative to now), one of
// them without any, a live threshold change, and the stream's starting
// stock in stock_levels.
type history struct {
	first, last civil.Date
	quiet       civil.Date // the day without adjustments
	start       map[event.Key]int64
	events      []event.Adjustment
	change      warehouse.ThresholdChangeRow
}

func newHistory(now time.Time) *history {
	h := &history{last: civil.DateOf(now.UTC()).AddDays(-1), start: map[event.Key]int64{}}
	h.first, h.quiet = h.last.AddDays(-29), h.last.AddDays(-13)
	rng := rand.New(rand.NewPCG(7, 25))
	var keys []event.Key
	for s := range 4 {
		for l := range 2 {
			k := event.Key{SKU: fmt.Sprintf("SKU-%02d", s), LocationID: fmt.Sprintf("STORE-%d", l)}
			keys = append(keys, k)
			h.start[k] = int64(40 + rng.IntN(80))
		}
	}
	n := 0
	for d := h.first; !d.After(h.last); d = d.AddDays(1) {
		if d == h.quiet {
			continue
		}
		midnight := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
		for _, k := range keys {
			for range 2 + rng.IntN(4) {
				n++
				a := event.Adjustment{EventID: fmt.Sprintf("ev-%05d", n), SKU: k.SKU, LocationID: k.LocationID,
					EventTime: midnight.Add(time.Duration(rng.IntN(86400)) * time.Second).UnixMicro()}
				switch r := rng.IntN(10); {
				case r < 6:
					a.Reason, a.Quantity = event.Sold, -int64(1+rng.IntN(6))
				case r < 8:
					a.Reason, a.Quantity = event.Received, int64(5+rng.IntN(20))
				case r < 9:
					a.Reason, a.Quantity = event.Damaged, -1
				default:
					a.Reason, a.Quantity = event.Counted, int64(10+rng.IntN(40))
				}
				h.events = append(h.events, a)
			}
		}
	}
	// SKU-00 at STORE-0 gets a threshold of 60 at noon, five days before
	// the last day; every other key keeps the default (10).
	at := time.Date(h.last.Year, h.last.Month, h.last.Day-5, 12, 0, 0, 0, time.UTC)
	h.change = warehouse.ThresholdChangeRow{ChangeID: "chg-1", SKU: "SKU-00", LocationID: "STORE-0", Threshold: 60,
		ChangedBy: "ops", ChangedAt: at, Applied: true, RecordedAt: at}
	return h
}

// write stores h in a new local warehouse, as the stream would: every
// adjustment (one of them delivered twice), the first change of each key
// in stock_levels (its previous_on_hand is the stream's starting stock),
// and the threshold change.
func (h *history) write(t *testing.T) string {
	t.Helper()
	wh := filepath.Join(t.TempDir(), "warehouse")
	w, err := local.Open(wh)
	if err != nil {
		t.Fatal(err)
	}
	var adj []warehouse.AdjustmentRow
	firstOf := map[event.Key]event.Adjustment{}
	for i, a := range h.events {
		tm := time.UnixMicro(a.EventTime).UTC()
		row := warehouse.AdjustmentRow{EventID: a.EventID, SKU: a.SKU, LocationID: a.LocationID, Reason: a.Reason.String(),
			Quantity: a.Quantity, EventTime: tm, Source: "test", Status: warehouse.StatusApplied, IngestTime: tm}
		adj = append(adj, row)
		if i == 3 {
			row.Status = warehouse.StatusDuplicate
			adj = append(adj, row)
		}
		if f, ok := firstOf[a.Key()]; !ok || a.EventTime < f.EventTime {
			firstOf[a.Key()] = a
		}
	}
	var levels []warehouse.StockLevelRow
	for k, a := range firstOf {
		tm := time.UnixMicro(a.EventTime).UTC()
		levels = append(levels, warehouse.StockLevelRow{SKU: k.SKU, LocationID: k.LocationID, PreviousOnHand: h.start[k],
			OnHand: h.start[k] + a.Quantity, EventID: a.EventID, Reason: a.Reason.String(), EventTime: tm, ProcessedAt: tm,
			Threshold: h.threshold(k)})
	}
	ctx := context.Background()
	for _, rows := range []warehouse.TableRows{warehouse.Rows(adj), warehouse.Rows(levels),
		warehouse.Rows([]warehouse.ThresholdChangeRow{h.change})} {
		if _, err := w.Write(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	return wh
}

// threshold is the threshold the stream stored for k in stock_levels: the
// default, except for SKU-01@STORE-1, which its thresholds file (not given
// to the nightly job) set to 25.
func (h *history) threshold(k event.Key) int64 {
	if k == (event.Key{SKU: "SKU-01", LocationID: "STORE-1"}) {
		return 25
	}
	return 10
}

// stockAt is the stock of every key just before t, the slow, obvious way.
func (h *history) stockAt(t time.Time) map[event.Key]int64 {
	snap := &snapshot.File{AsOf: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for k, v := range h.start {
		snap.Items = append(snap.Items, snapshot.Item{SKU: k.SKU, LocationID: k.LocationID, OnHand: v})
	}
	var evs []event.Adjustment
	for _, a := range h.events {
		if a.EventTime < t.UnixMicro() {
			evs = append(evs, a)
		}
	}
	_, stock := oracle.Stock(evs, snap)
	return stock
}

// soldIn is the units each key sold in the days from..to.
func (h *history) soldIn(from, to civil.Date) map[event.Key]int64 {
	lo := time.Date(from.Year, from.Month, from.Day, 0, 0, 0, 0, time.UTC).UnixMicro()
	hi := time.Date(to.Year, to.Month, to.Day+1, 0, 0, 0, 0, time.UTC).UnixMicro()
	out := map[event.Key]int64{}
	for _, a := range h.events {
		if a.Reason == event.Sold && a.EventTime >= lo && a.EventTime < hi {
			out[a.Key()] -= a.Quantity
		}
	}
	return out
}

func readReport(t *testing.T, dir string) *reports.Report {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, jsonFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := reports.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReportIsAFunctionOfTheData runs the last day of a 30-day warehouse
// alone, as the first night as deployed would (no snapshot, no thresholds
// file, no daily_summary at all), and the same day inside a backfill of all
// 30 days in a copy of the warehouse: the two reports agree on every
// figure, and the figures are those of the data. The day without
// adjustments is reported like any other.
func TestReportIsAFunctionOfTheData(t *testing.T) {
	slowtest.Skip(t, "31 Prism jobs")
	ctx := context.Background()
	h := newHistory(clock.Now())
	alone, backfill := h.write(t), h.write(t)

	cfgAlone := Config{Date: h.last, Warehouse: alone, Output: t.TempDir(), Shards: 2, RunID: "alone"}
	if _, err := Run(ctx, cfgAlone); err != nil {
		t.Fatalf("Run %s alone: %v", h.last, err)
	}
	cfgRange := Config{Warehouse: backfill, Output: t.TempDir(), Shards: 2, RunID: "range"}
	res, err := RunRange(ctx, cfgRange, h.first, h.last, nil)
	if err != nil {
		t.Fatalf("RunRange %s to %s: %v", h.first, h.last, err)
	}
	if len(res) != 30 {
		t.Fatalf("RunRange ran %d days, want 30", len(res))
	}

	got, ref := dailySummary(t, alone, h.last), dailySummary(t, backfill, h.last)
	if len(got) != len(h.start) || len(ref) != len(h.start) {
		t.Fatalf("daily_summary of %s: %d rows alone, %d in the backfill; want %d", h.last, len(got), len(ref), len(h.start))
	}
	open := h.stockAt(time.Date(h.last.Year, h.last.Month, h.last.Day, 0, 0, 0, 0, time.UTC))
	closing := h.stockAt(time.Date(h.last.Year, h.last.Month, h.last.Day+1, 0, 0, 0, 0, time.UTC))
	sold7, sold28 := h.soldIn(h.last.AddDays(-6), h.last), h.soldIn(h.last.AddDays(-27), h.last)
	for k := range h.start {
		name := k.SKU + "@" + k.LocationID
		g, r := got[name], ref[name]
		for _, col := range []string{"opening_on_hand", "closing_on_hand", "sold", "sold_7d", "sold_28d", "days_of_cover",
			"threshold", "min_on_hand", "events", "alerts_raised", "minutes_out_of_stock"} {
			if fmt.Sprint(g[col]) != fmt.Sprint(r[col]) {
				t.Errorf("%s %s: %v alone, %v in the backfill", name, col, g[col], r[col])
			}
		}
		if g["opening_on_hand"] != open[k] || g["closing_on_hand"] != closing[k] {
			t.Errorf("%s: opening %v, closing %v; the data says %d, %d", name, g["opening_on_hand"], g["closing_on_hand"], open[k], closing[k])
		}
		if g["sold_7d"] != sold7[k] || g["sold_28d"] != sold28[k] {
			t.Errorf("%s: sold_7d %v, sold_28d %v; the data says %d, %d", name, g["sold_7d"], g["sold_28d"], sold7[k], sold28[k])
		}
		wantTh := h.threshold(k) // from stock_levels: no thresholds file is given
		if k.SKU == "SKU-00" && k.LocationID == "STORE-0" {
			wantTh = 60
		}
		if g["threshold"] != wantTh {
			t.Errorf("%s: threshold %v, want %d (the live change recorded in threshold_changes, else the stream's in stock_levels)", name, g["threshold"], wantTh)
		}
	}

	// The reports' totals, week over week and trend chart agree too.
	repAlone, repRange := readReport(t, cfgAlone.reportDir()), readReport(t, filepath.Join(cfgRange.Output, h.last.String()))
	ta, tr := repAlone.Totals, repRange.Totals
	pct := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprint(*p)
	}
	if ta.Sold7d != tr.Sold7d || ta.SoldPrev7d != tr.SoldPrev7d || ta.Sold28d != tr.Sold28d || ta.TrendDays != tr.TrendDays ||
		pct(ta.SoldWoWPct) != pct(tr.SoldWoWPct) {
		t.Errorf("totals alone %+v\nin the backfill %+v", ta, tr)
	}
	if ta.TrendDays != reports.TrendDays || ta.SoldPrev7d == 0 {
		t.Errorf("totals alone: %d trend days, %d sold the week before; want %d days and sales", ta.TrendDays, ta.SoldPrev7d, reports.TrendDays)
	}
	if !slices.Equal(repAlone.Days, repRange.Days) {
		t.Errorf("trend days alone %+v\nin the backfill %+v", repAlone.Days, repRange.Days)
	}
	// The "below threshold" list and the chart's line use the live threshold.
	for _, r := range repAlone.Rows {
		if r.SKU != "SKU-00" || r.LocationID != "STORE-0" {
			continue
		}
		below := slices.ContainsFunc(repAlone.BelowThreshold, func(x reports.Row) bool { return x.SKU == r.SKU && x.LocationID == r.LocationID })
		if below != (r.ClosingOnHand < 60) {
			t.Errorf("SKU-00@STORE-0 closes at %d: listed below threshold %v, want %v (threshold 60)", r.ClosingOnHand, below, !below)
		}
	}
	for _, c := range repAlone.Charts {
		if c.SKU == "SKU-00" && c.LocationID == "STORE-0" && c.Threshold != 60 {
			t.Errorf("the chart of SKU-00@STORE-0 draws threshold %d, want 60", c.Threshold)
		}
	}

	// The day without adjustments was reported, with no movement, and the
	// day before the threshold change was judged against the old threshold.
	quiet := dailySummary(t, backfill, h.quiet)
	before := dailySummary(t, backfill, h.last.AddDays(-6))
	for k := range h.start {
		name := k.SKU + "@" + k.LocationID
		if q := quiet[name]; q == nil || q["events"] != int64(0) || q["opening_on_hand"] != q["closing_on_hand"] {
			t.Errorf("%s on the day without adjustments: %v, want a row with no movement", name, q)
		}
		if b := before[name]; b == nil || b["threshold"] != h.threshold(k) {
			t.Errorf("%s the day before the threshold change: %v, want threshold %d", name, b, h.threshold(k))
		}
	}
	runs, err := warehouse.QueryRows(ctx, backfill, "SELECT count(*) AS n FROM report_runs WHERE status = 'SUCCEEDED'")
	if err != nil || len(runs) != 1 || warehouse.AsInt(runs[0]["n"]) != 30 {
		t.Errorf("report_runs of the backfill: %v %v, want 30 SUCCEEDED", runs, err)
	}
}
