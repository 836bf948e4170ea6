package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/oracle"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

const (
	sampleCSV  = "../../../testdata/inventory_adjustments.csv"
	sampleSnap = "../../../testdata/inventory_state.json"
	sampleTh   = "../../../testdata/thresholds.csv"
)

// TestDemo runs the demo's whole path on the sample data and checks what it
// promises: every event applied, the stock exact, the alerts consistent
// between the topic and the table, the report written with the totals of
// the data, and every count it prints the warehouse's. A second run
// replaces the first one's directories and prints the same. Then
// `inventory up` uses the warehouse: the demo is refused while it runs,
// and after it stored rows there.
func TestDemo(t *testing.T) {
	slowtest.Skip(t, "runs the demo (Prism jobs)")
	dir := t.TempDir()
	wh, reports := filepath.Join(dir, "warehouse"), filepath.Join(dir, "reports")
	g := &globals{Project: "demo-test", Logger: slog.New(slog.DiscardHandler)}
	cfg := demoConfig{Events: sampleCSV, Snapshot: sampleSnap, Thresholds: sampleTh,
		Warehouse: wh, Reports: reports, Timeout: 5 * time.Minute}
	var runs [2]string
	for i := range runs {
		var out bytes.Buffer
		err := runDemo(context.Background(), g, cfg, &out)
		t.Logf("run %d:\n%s", i+1, out.String())
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = out.String()
	}
	if a, b := sameRun(runs[0]), sameRun(runs[1]); a != b {
		t.Errorf("two demo runs printed different accounts:\n%s\n---\n%s", a, b)
	}
	var out bytes.Buffer
	out.WriteString(runs[1])
	checkPrintedCounts(t, out.String(), wh)
	ctx := context.Background()
	start, _ := snapshot.Read(ctx, sampleSnap)
	want, err := oracle.FromCSV(sampleCSV, start, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Stock: the latest stock level of every key that changed is the oracle's.
	rows, err := warehouse.QueryRows(ctx, wh, `SELECT sku, location_id, on_hand FROM stock_levels
		QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 50 {
		t.Fatalf("only %d keys in stock_levels", len(rows))
	}
	for _, r := range rows {
		k := event.Key{SKU: r["sku"].(string), LocationID: r["location_id"].(string)}
		if got := toInt(r["on_hand"]); got != want.Stock[k] {
			t.Errorf("%s: stock %d, oracle %d", k, got, want.Stock[k])
		}
	}

	// Alerts: as many on the topic as in the table, each one consistent.
	var printed int
	for _, l := range strings.Split(out.String(), "\n") {
		if i := strings.Index(l, " alerts reached low-stock-consumer"); i > 0 {
			f := strings.Fields(l[:i])
			printed = int(toInt(json.Number(f[len(f)-1])))
		}
	}
	alerts, err := warehouse.QueryRows(ctx, wh, `SELECT DISTINCT alert_id, severity, on_hand, threshold FROM low_stock_alerts`)
	if err != nil {
		t.Fatal(err)
	}
	if printed == 0 || printed != len(alerts) {
		t.Fatalf("%d alerts printed from low-stock-consumer, %d in low_stock_alerts", printed, len(alerts))
	}
	for _, a := range alerts {
		on, th, sev := toInt(a["on_hand"]), toInt(a["threshold"]), a["severity"].(string)
		ok := sev == "OUT" && on <= 0 || sev == "LOW" && on > 0 && on < th || sev == "RECOVERED" && on >= th
		if !ok {
			t.Errorf("alert %v is inconsistent", a)
		}
	}

	// The report: files exist and the totals are the data's.
	var sum struct {
		Totals struct {
			Keys, Events, Received, Sold, Mismatches int64
		} `json:"totals"`
	}
	b, err := os.ReadFile(filepath.Join(reports, "2026-11-24", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	received, sold := sumCSV(t)
	if sum.Totals.Events != int64(want.Valid) || sum.Totals.Received != received || sum.Totals.Sold != sold || sum.Totals.Keys != 60 {
		t.Fatalf("report totals %+v, want events %d received %d sold %d keys 60", sum.Totals, want.Valid, received, sold)
	}
	// The batch closing stock reconciles with the stream's, key by key.
	if sum.Totals.Mismatches != 0 {
		t.Fatalf("%d keys where the nightly closing stock differs from the stream's", sum.Totals.Mismatches)
	}
	if fi, err := os.Stat(filepath.Join(reports, "2026-11-24", "index.html")); err != nil || fi.Size() < 1000 {
		t.Fatalf("index.html: %v", err)
	}
	// Rows refused at publish: printed with the file's line numbers (the
	// second half, published as Protobuf, too) and stored in dead_letters.
	bad := badLines(t, sampleCSV)
	for _, o := range bad {
		if !strings.Contains(out.String(), o+": rejected") {
			t.Errorf("the demo does not print %s as rejected", o)
		}
	}
	if got := publishOrigins(t, wh); strings.Join(got, " ") != strings.Join(bad, " ") {
		t.Errorf("dead_letters has the publish-stage rows %v, want %v", got, bad)
	}
	checkDemoRefusedAfterUp(t, g, cfg)
}

// sameRun is a demo's account without what differs between identical runs:
// the timings and the local ports.
func sameRun(out string) string {
	out = regexp.MustCompile(`\[(\d)/8 +[0-9.]+s\]`).ReplaceAllString(out, "[$1/8]")
	return regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out, "127.0.0.1:PORT")
}

// checkPrintedCounts checks every count the demo printed against the
// warehouse it wrote.
func checkPrintedCounts(t *testing.T, out, wh string) {
	t.Helper()
	ctx := context.Background()
	count := func(sql string) int64 {
		n, err := warehouse.QueryInt(ctx, wh, sql)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	status := func(s string) int64 {
		return count("SELECT count(DISTINCT event_id) FROM adjustments WHERE status = '" + s + "'")
	}
	severity := func(s ...string) int64 {
		return count("SELECT count(DISTINCT alert_id) FROM low_stock_alerts WHERE severity IN ('" + strings.Join(s, "', '") + "')")
	}
	received, sold := sumCSV(t)
	all := status("APPLIED") + status("SUPERSEDED")
	for _, want := range []string{
		fmt.Sprintf("the stream took %d/%d events (adjustments): %d applied, %d superseded by a later count, %d duplicates",
			all, all, status("APPLIED"), status("SUPERSEDED"), status("DUPLICATE")),
		fmt.Sprintf("%d alerts reached low-stock-consumer: %d LOW, %d OUT, %d RECOVERED, as low_stock_alerts holds",
			severity("LOW", "OUT", "RECOVERED"), severity("LOW"), severity("OUT"), severity("RECOVERED")),
		fmt.Sprintf("the stream's tables agree for 2026-11-24: %d adjustments applied (adjustments), %d LOW or OUT alerts (low_stock_alerts)",
			status("APPLIED"), severity("LOW", "OUT")),
		"explore: go run ./cmd/inventory sql --warehouse " + wh + " ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo does not print %q", want)
		}
	}
	// The summary table: its header, then its one row.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) == 0 || f[0] != "keys" || i+2 >= len(lines) {
			continue
		}
		got := map[string]string{}
		for j, name := range strings.Fields(l) {
			got[name] = strings.Fields(lines[i+2])[j]
		}
		want := map[string]int64{"keys": 60, "adjustments_applied": status("APPLIED"), "units_received": received, "units_sold": -sold,
			"low_or_out_alerts": severity("LOW", "OUT"), "keys_out_of_stock": count(`SELECT count(*) FROM (SELECT * FROM stock_levels
			QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1) WHERE on_hand <= 0`),
			"stream_mismatches": 0}
		for name, w := range want {
			if got[name] != fmt.Sprint(w) {
				t.Errorf("summary %s = %q, the warehouse says %d", name, got[name], w)
			}
		}
		return
	}
	t.Errorf("the demo prints no summary table")
}

// checkDemoRefusedAfterUp runs `inventory up` on the demo's warehouse: the
// demo is refused while up runs; up stores events there; once it stopped,
// the demo is refused still, and the warehouse keeps up's events.
func checkDemoRefusedAfterUp(t *testing.T, g *globals, cfg demoConfig) {
	if t.Failed() {
		return
	}
	ctx := context.Background()
	up := startUp(t, "--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", filepath.Join(filepath.Dir(cfg.Warehouse), "pubsub"),
		"--warehouse", cfg.Warehouse, "--reports", cfg.Reports, "--snapshot", sampleSnap, "--thresholds", sampleTh, "--project", "demo-test")
	refused := func(want string) {
		t.Helper()
		var out bytes.Buffer
		err := runDemo(ctx, g, cfg, &out)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "demo --warehouse ") {
			t.Fatalf("demo: %v\n%s\nwant a refusal saying %q and what to run instead", err, out.String(), want)
		}
		t.Logf("refused: %v", err)
	}
	refused("the warehouse " + cfg.Warehouse + " is in use by another inventory up (pid ")
	before, err := warehouse.QueryInt(ctx, cfg.Warehouse, "SELECT count(DISTINCT event_id) FROM adjustments")
	if err != nil {
		t.Fatal(err)
	}
	var events bytes.Buffer
	if err := synth.Generate(&events, synth.Config{Events: 50, Seed: 27}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PUBSUB_EMULATOR_HOST", up.pubsub)
	a, err := broker.NewAdmin(ctx, "demo-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := broker.NewPublisher(a, broker.PublishConfig{Topic: "inventory-topic"}).Publish(ctx, &events)
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := before + int64(st.Published)
	n := before
	for deadline := time.Now().Add(2 * time.Minute); n < want && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n, err = warehouse.QueryInt(ctx, cfg.Warehouse, "SELECT count(DISTINCT event_id) FROM adjustments"); err != nil {
			t.Fatal(err)
		}
	}
	up.interrupt(t)
	if n < want {
		t.Fatalf("up stored %d of %d events", n-before, st.Published)
	}
	refused("warehouse " + cfg.Warehouse + " changed since the demo of ")
	if n, err := warehouse.QueryInt(ctx, cfg.Warehouse, "SELECT count(DISTINCT event_id) FROM adjustments"); err != nil || n != want {
		t.Fatalf("after the refused demo the warehouse holds %d events (%v), want %d", n, err, want)
	}
}

// sumCSV adds up the RECEIVED and SOLD quantities of the valid sample rows.
func sumCSV(t *testing.T) (received, sold int64) {
	f, err := os.Open(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _ := event.NewCSVReader(f, sampleCSV)
	for {
		var a event.Adjustment
		err := r.Next(&a)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil || event.Validate(&a, clock.Now()) != nil {
			continue
		}
		switch a.Reason {
		case event.Received:
			received += a.Quantity
		case event.Sold:
			sold += a.Quantity
		}
	}
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return -1 << 62
}
