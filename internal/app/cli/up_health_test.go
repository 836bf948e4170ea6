package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// TestUpHealth runs `inventory up`, publishes the sample over gRPC to its
// local Pub/Sub, and checks /metrics against the warehouse: every event
// counted by outcome, the alerts, an empty backlog. Then it makes the
// warehouse unwritable (the adjustments table's folder becomes a file:
// tests run as root, whom chmod does not stop), publishes again, and
// checks that the status line and /metrics say STALLED within 30 s.
func TestUpHealth(t *testing.T) {
	slowtest.Skip(t, "runs inventory up (Prism jobs)")
	dir := t.TempDir()
	wh := filepath.Join(dir, "warehouse")
	up := startUp(t, "--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", "",
		"--warehouse", wh, "--reports", filepath.Join(dir, "reports"), "--snapshot", sampleSnap, "--thresholds", sampleTh,
		"--project", "health-test")
	defer func() {
		up.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- up.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			up.cmd.Process.Kill()
		}
	}()
	started := up.stderr.String()
	if !strings.Contains(started, "restore   empty warehouse "+wh) {
		t.Errorf("up did not say it starts from an empty warehouse:\n%s", started)
	}
	metricsURL := ""
	for l := range strings.Lines(started) {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "ops" {
			metricsURL = f[1]
		}
	}
	if !strings.HasSuffix(metricsURL, "/metrics") {
		t.Fatalf("up stated no ops line with /metrics:\n%s", started)
	}
	ctx := context.Background()
	publish := func() int {
		t.Setenv("PUBSUB_EMULATOR_HOST", up.pubsub)
		a, err := broker.NewAdmin(ctx, "health-test")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		f, err := os.Open(sampleCSV)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := broker.NewPublisher(a, broker.PublishConfig{Topic: "inventory-topic", Format: "json"}).Publish(ctx, f)
		if err != nil && st.Published == 0 {
			t.Fatal(err)
		}
		return st.Published
	}
	published := publish()

	// What the warehouse holds, as the metrics must count it.
	var want map[string]int64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, err := warehouse.QueryRows(ctx, wh, `SELECT
  (SELECT count(*) FROM adjustments) AS received,
  (SELECT count(*) FROM adjustments WHERE status IN ('APPLIED', 'SUPERSEDED')) AS applied,
  (SELECT count(*) FROM adjustments WHERE status = 'SUPERSEDED') AS superseded,
  (SELECT count(*) FROM adjustments WHERE status = 'DUPLICATE') AS duplicate,
  (SELECT count(*) FROM low_stock_alerts) AS alerts`)
		if err != nil {
			t.Fatal(err)
		}
		want = map[string]int64{}
		for k, v := range rows[0] {
			want[k], _ = v.(int64)
		}
		if want["received"] == int64(published) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if want["received"] != int64(published) {
		t.Fatalf("%d of %d events stored in 2 minutes", want["received"], published)
	}
	lines := []string{
		`inventory_events_total{outcome="received"} ` + strconv.FormatInt(want["received"], 10),
		`inventory_events_total{outcome="applied"} ` + strconv.FormatInt(want["applied"], 10),
		`inventory_events_total{outcome="superseded"} ` + strconv.FormatInt(want["superseded"], 10),
		`inventory_events_total{outcome="duplicate"} ` + strconv.FormatInt(want["duplicate"], 10),
		`inventory_events_total{outcome="dead_lettered"} 0`,
		"inventory_alerts_total " + strconv.FormatInt(want["alerts"], 10),
		"inventory_backlog_messages 0",
		"inventory_stalled 0",
		"inventory_stream_up 1",
	}
	body := waitMetrics(t, metricsURL, 30*time.Second, lines...)
	if !strings.Contains(body, `inventory_publish_to_stored_latency_seconds{quantile="0.99"}`) ||
		strings.Contains(body, "inventory_last_commit_timestamp_seconds 0\n") {
		t.Errorf("/metrics lacks the latency or the last commit:\n%s", body)
	}

	// The sink cannot write any more: the backlog stays, STALLED follows.
	adj := filepath.Join(wh, warehouse.Adjustments)
	if err := os.Rename(adj, adj+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adj, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	publish()
	stalled := make(chan string, 1)
	go func() {
		for l := range up.lines {
			if strings.Contains(l, "STALLED") {
				stalled <- l
				break
			}
		}
		for range up.lines { // keep the pipe drained
		}
	}()
	select {
	case l := <-stalled:
		t.Logf("%.1f s after the sink stopped: %s", time.Since(stopped).Seconds(), l)
		if !strings.Contains(l, "not a directory") {
			t.Errorf("the STALLED line does not say why: %s", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no STALLED line within 30 s of the sink stopping")
	}
	waitMetrics(t, metricsURL, 5*time.Second, "inventory_stalled 1", "inventory_stream_up 0")
}

// waitMetrics polls url until its body holds every line, and returns it.
func waitMetrics(t *testing.T, url string, within time.Duration, lines ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var body string
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
		missing := ""
		sc := bufio.NewScanner(bytes.NewReader(b))
		have := map[string]bool{}
		for sc.Scan() {
			have[sc.Text()] = true
		}
		for _, l := range lines {
			if !have[l] {
				missing = l
				break
			}
		}
		if missing == "" {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no line %q within %s:\n%s", url, missing, within, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
