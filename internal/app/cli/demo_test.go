package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/oracle"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
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
// between the topic and the table, and the report written with the totals
// of the data.
func TestDemo(t *testing.T) {
	slowtest.Skip(t, "runs the demo (Prism jobs)")
	dir := t.TempDir()
	wh, reports := filepath.Join(dir, "warehouse"), filepath.Join(dir, "reports")
	var out bytes.Buffer
	g := &Globals{Project: "demo-test", Logger: slog.New(slog.DiscardHandler)}
	err := RunDemo(context.Background(), g, DemoConfig{Events: sampleCSV, Snapshot: sampleSnap, Thresholds: sampleTh,
		Warehouse: wh, Reports: reports, Timeout: 5 * time.Minute}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
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
	// A second demo replaces the first one's warehouse, and refuses others.
	if err := freshWarehouse(wh); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "mine")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "precious.parquet"), []byte("x"), 0o644)
	if err := freshWarehouse(other); err == nil {
		t.Fatal("the demo would replace a warehouse it did not make")
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
