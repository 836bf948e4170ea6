package opspage

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/civil"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/thresholds"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

const timeLayout = "2006-01-02 15:04:05"

// maxRows bounds the keys and rules listed; the rest are counted.
const maxRows = 100

// latestStockSQL is each key's on-hand now: its latest stock_levels row,
// as the demo's "below threshold now" reads it.
const latestStockSQL = `SELECT sku, location_id, on_hand FROM stock_levels
QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1`

const changesSQL = `SELECT change_id, sku, location_id, threshold, changed_by, changed_at FROM threshold_changes`

const recentAlertsSQL = `SELECT alert_id, sku, location_id, severity, previous_severity, on_hand, threshold, event_id, event_time, alert_time
FROM low_stock_alerts QUALIFY ROW_NUMBER() OVER (PARTITION BY alert_id ORDER BY alert_time) = 1
ORDER BY alert_time DESC, event_time DESC, alert_id LIMIT 20`

// rulesNow is the reorder rules in force: the thresholds file with the
// live changes of threshold_changes over it, and who made each change.
type rulesNow struct {
	base *ledger.Thresholds
	live *ledger.Live
	who  map[string]changeInfo // by change id
}

type changeInfo struct {
	By string
	At time.Time
}

func (p *Page) readRules(ctx context.Context) (*rulesNow, error) {
	base, err := thresholds.Read(ctx, p.cfg.Thresholds, p.cfg.DefaultThreshold)
	if err != nil {
		return nil, err
	}
	rows, err := warehouse.QueryRows(ctx, p.cfg.Warehouse, changesSQL)
	if err != nil {
		return nil, fmt.Errorf("read threshold_changes: %w", err)
	}
	r := &rulesNow{base: base, live: &ledger.Live{}, who: map[string]changeInfo{}}
	for _, row := range rows {
		at, _ := row["changed_at"].(time.Time)
		c := ledger.Change{ID: warehouse.AsString(row["change_id"]), SKU: warehouse.AsString(row["sku"]),
			LocationID: warehouse.AsString(row["location_id"]), Threshold: warehouse.AsInt(row["threshold"]), At: at.UnixMicro()}
		r.live.Set(&c, nil)
		r.who[c.ID] = changeInfo{By: warehouse.AsString(row["changed_by"]), At: at}
	}
	return r, nil
}

// keyView is a key at or below its threshold.
type keyView struct {
	SKU, Location     string
	OnHand, Threshold int64
	Severity          string // OUT, LOW or AT (on the threshold: not yet LOW)
}

// lowKeys returns the keys whose on-hand now (the latest stock_levels row,
// else the starting stock) is at or below the threshold in force, matching
// q, most short first; at most maxRows, and how many matched.
func (p *Page) lowKeys(ctx context.Context, rules *rulesNow, q string) ([]keyView, int, error) {
	onHand := map[event.Key]int64{}
	if p.cfg.Snapshot != "" {
		snap, err := snapshot.Read(ctx, p.cfg.Snapshot)
		if err != nil {
			return nil, 0, err
		}
		for _, it := range snap.Items {
			onHand[it.Key()] = it.OnHand
		}
	}
	rows, err := warehouse.QueryRows(ctx, p.cfg.Warehouse, latestStockSQL)
	if err != nil {
		return nil, 0, fmt.Errorf("read stock_levels: %w", err)
	}
	for _, r := range rows {
		onHand[event.Key{SKU: warehouse.AsString(r["sku"]), LocationID: warehouse.AsString(r["location_id"])}] = warehouse.AsInt(r["on_hand"])
	}
	var out []keyView
	for k, n := range onHand {
		th := ledger.Effective(k, rules.base, rules.live)
		if n > th || !matches(q, k.SKU, k.LocationID) {
			continue
		}
		sev := "AT"
		switch {
		case n <= 0:
			sev = "OUT"
		case n < th:
			sev = "LOW"
		}
		out = append(out, keyView{SKU: k.SKU, Location: k.LocationID, OnHand: n, Threshold: th, Severity: sev})
	}
	slices.SortFunc(out, func(a, b keyView) int {
		return cmp.Or(cmp.Compare(a.OnHand-a.Threshold, b.OnHand-b.Threshold), cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.Location, b.Location))
	})
	n := len(out)
	return out[:min(n, maxRows)], n, nil
}

// matches reports whether every word of q is in one of the fields,
// ignoring case.
func matches(q string, fields ...string) bool {
	for _, w := range strings.Fields(strings.ToLower(q)) {
		if !slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(strings.ToLower(f), w) }) {
			return false
		}
	}
	return true
}

// ruleView is one reorder rule.
type ruleView struct {
	SKU, Location string
	Threshold     int64
	Source        string // "file" or "live"
	By, At        string
}

// ruleList returns the rules matching q in (SKU, location) order, at most
// maxRows, and how many matched.
func ruleList(r *rulesNow, q string) ([]ruleView, int) {
	byRule := map[[2]string]ruleView{}
	for _, x := range r.base.Rules() {
		byRule[[2]string{x.SKU, x.LocationID}] = ruleView{SKU: x.SKU, Location: x.LocationID, Threshold: x.Threshold, Source: "file"}
	}
	for _, c := range r.live.Changes() {
		w := r.who[c.ID]
		byRule[[2]string{c.SKU, c.LocationID}] = ruleView{SKU: c.SKU, Location: c.LocationID, Threshold: c.Threshold, Source: "live",
			By: w.By, At: w.At.UTC().Format(timeLayout)}
	}
	var out []ruleView
	for _, v := range byRule {
		if matches(q, v.SKU, v.Location, v.By) {
			out = append(out, v)
		}
	}
	// Live changes first, the latest on top; then the file's rules.
	slices.SortFunc(out, func(a, b ruleView) int {
		return cmp.Or(cmp.Compare(b.At, a.At), cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.Location, b.Location))
	})
	n := len(out)
	return out[:min(n, maxRows)], n
}

// storedAlerts returns the latest alerts of the warehouse, newest first.
func (p *Page) storedAlerts(ctx context.Context) ([]alertView, error) {
	rows, err := warehouse.QueryRows(ctx, p.cfg.Warehouse, recentAlertsSQL)
	if err != nil {
		return nil, fmt.Errorf("read low_stock_alerts: %w", err)
	}
	out := make([]alertView, 0, len(rows))
	for _, r := range rows {
		at, _ := r["alert_time"].(time.Time)
		et, _ := r["event_time"].(time.Time)
		out = append(out, alertView{ID: warehouse.AsString(r["alert_id"]), Time: at.UTC().Format(timeLayout),
			Severity: warehouse.AsString(r["severity"]), Previous: warehouse.AsString(r["previous_severity"]),
			SKU: warehouse.AsString(r["sku"]), Location: warehouse.AsString(r["location_id"]),
			OnHand: warehouse.AsInt(r["on_hand"]), Threshold: warehouse.AsInt(r["threshold"]), EventID: warehouse.AsString(r["event_id"]),
			Order: order(at, et)})
	}
	return out, nil
}

// reportView is one nightly report under the report root.
type reportView struct {
	Date  string
	Files []string // index.html first, then the others present
}

// latestReports lists the newest reports (report root/DATE/index.html),
// newest first.
func (p *Page) latestReports() ([]reportView, error) {
	entries, err := os.ReadDir(p.cfg.Reports)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read reports: %w", err)
	}
	var out []reportView
	for _, e := range entries {
		if _, err := civil.ParseDate(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		dir := filepath.Join(p.cfg.Reports, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
			continue // not published yet (index.html is written last)
		}
		r := reportView{Date: e.Name(), Files: []string{"index.html"}}
		for _, f := range []string{"summary.csv", "summary.json", "summary.md"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				r.Files = append(r.Files, f)
			}
		}
		out = append(out, r)
	}
	slices.Reverse(out) // ReadDir sorts by name: dates ascending
	return out[:min(len(out), 10)], nil
}
