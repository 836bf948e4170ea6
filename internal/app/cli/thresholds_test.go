package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// runCombined runs the CLI like runCLI and returns its stdout and stderr
// together.
func runCombined(t *testing.T, args ...string) (string, error) {
	t.Helper()
	o, e, err := runCLI(t, context.Background(), args...)
	return o + e, err
}

// TestLiveThreshold is the acceptance test on the local stack
// (`inventory up` as a child process): a key's stock is 30 against the
// default threshold 10; `inventory thresholds set` raises its threshold to
// 40, and its LOW alert must reach low_stock_alerts and low-stock-consumer
// (read with `inventory alerts`) within 60 s, without a restart. After a
// restart, one more sale of the key must be judged against 40.
func TestLiveThreshold(t *testing.T) {
	slowtest.Skip(t, "starts the local stack twice")
	dir := t.TempDir()
	wh := filepath.Join(dir, "warehouse")
	const project = "live-threshold"
	args := []string{"--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", filepath.Join(dir, "pubsub"),
		"--warehouse", wh, "--reports", filepath.Join(dir, "reports"), "--snapshot", sampleSnap, "--thresholds", sampleTh,
		"--project", project}
	ctx := context.Background()
	now := time.Now().UTC()
	publish := func(p *upProcess, rows ...string) {
		t.Helper()
		t.Setenv("PUBSUB_EMULATOR_HOST", p.pubsub)
		a, err := broker.NewAdmin(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		csv := "event_id,event_time,sku,location_id,reason,quantity,source\n" + strings.Join(rows, "\n") + "\n"
		st, err := broker.NewPublisher(a, broker.PublishConfig{Topic: "inventory-topic", Format: "json"}).Publish(ctx, strings.NewReader(csv))
		if err != nil || st.Published != len(rows) {
			t.Fatalf("publish: %+v %v", st, err)
		}
	}
	waitRows := func(what, sql string, want int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			rows, err := warehouse.QueryRows(ctx, wh, sql)
			if err == nil && len(rows) >= want {
				return rows
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d rows within 60 s (%v), want %d", what, len(rows), err, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	row := func(i int) string {
		return fmt.Sprintf("live-%d,%s,SKU-LIVE,STORE-LIVE", i, now.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
	}

	up := startUp(t, args...)
	publish(up, row(1)+",COUNTED,30,test")
	waitRows("the count", `SELECT * FROM stock_levels WHERE event_id = 'live-1' AND severity = 'OK' AND threshold = 10`, 1)

	// Refused before anything is published.
	for _, bad := range [][]string{{"SKU-LIVE", "STORE-LIVE", "-5"}, {"SKU-LIVE", "STORE-LIVE", "ten"}, {"SKU LIVE", "STORE-LIVE", "5"}} {
		out, err := runCombined(t, append([]string{"thresholds", "set", "--project", project, "--warehouse", wh}, bad...)...)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad[0])) && !strings.Contains(err.Error(), fmt.Sprintf("%q", bad[2])) {
			t.Errorf("thresholds set %v: %q, %v; want a refusal naming the bad value", bad, out, err)
		}
	}

	out, err := runCombined(t, "thresholds", "set", "--project", project, "--warehouse", wh, "SKU-LIVE", "STORE-LIVE", "40")
	if err != nil || !strings.Contains(out, "applied by the streaming job: SKU-LIVE STORE-LIVE no rule -> 40") {
		t.Fatalf("thresholds set: %q %v", out, err)
	}
	alerts := waitRows("the LOW alert", `SELECT alert_id, event_id FROM low_stock_alerts
		WHERE sku = 'SKU-LIVE' AND severity = 'LOW' AND threshold = 40 AND on_hand = 30`, 1)
	alertID := alerts[0]["alert_id"].(string)
	if !strings.HasPrefix(alerts[0]["event_id"].(string), "threshold:") {
		t.Errorf("alert event_id %v, want threshold:CHANGE", alerts[0]["event_id"])
	}
	out, err = runCombined(t, "alerts", "--project", project, "--format", "json", "--idle", "3s")
	if err != nil || !strings.Contains(out, `"alert_id":"`+alertID+`"`) || !strings.Contains(out, `"severity":"LOW"`) {
		t.Fatalf("alerts: %q %v; want the LOW alert %s", out, err, alertID)
	}
	out, err = runCombined(t, "thresholds", "list", "--warehouse", wh, "--thresholds", sampleTh)
	if err != nil || !strings.Contains(out, "SKU-LIVE") || !strings.Contains(out, "live") {
		t.Errorf("thresholds list: %q %v", out, err)
	}
	up.interrupt(t)

	// Restarted: the change is restored, so a sale (30 -> 29) is judged
	// against 40: LOW, and no new alert since it was LOW already.
	up = startUp(t, args...)
	publish(up, row(2)+",SOLD,-1,test")
	levels := waitRows("the sale", `SELECT threshold, severity, on_hand FROM stock_levels WHERE event_id = 'live-2'`, 1)
	if l := levels[0]; l["threshold"] != int64(40) || l["severity"] != "LOW" || l["on_hand"] != int64(29) {
		t.Errorf("after the restart the sale left %v, want on_hand 29, threshold 40, LOW", l)
	}
	up.interrupt(t)
	if n, err := warehouse.QueryInt(ctx, wh, "SELECT count(*) FROM low_stock_alerts WHERE sku = 'SKU-LIVE'"); err != nil || n != 1 {
		t.Errorf("%d alerts of SKU-LIVE (%v), want the one LOW", n, err)
	}
	if n, err := warehouse.QueryInt(ctx, wh, "SELECT count(*) FROM threshold_changes WHERE sku = 'SKU-LIVE' AND applied"); err != nil || n != 1 {
		t.Errorf("%d threshold_changes of SKU-LIVE (%v), want 1", n, err)
	}
}
