package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func prodEnv() map[string]string {
	return map[string]string{
		"MODE": "production", "PROJECT": "inventory-prod", "REGION": "europe-west1",
		"TEMPLATE_GCS_PATH":   "gs://inventory-prod-dataflow/templates/nightly.json",
		"EXPECTED_AUDIENCE":   "https://nightly-trigger-abc-ew.a.run.app, https://nightly-trigger-123456789012.europe-west1.run.app",
		"INVOKER_SA_EMAIL":    "scheduler-invoker@inventory-prod.iam.gserviceaccount.com, ops@inventory-prod.iam.gserviceaccount.com",
		"TEMPLATE_PARAMETERS": "output=gs://inventory-prod-reports/reports, warehouse=bq://inventory-prod.inventory",
		"MAX_WORKERS":         "4",
		"TIME_ZONE":           "Europe/Berlin",
	}
}

func TestLoadConfigProduction(t *testing.T) {
	c, err := loadConfig(envOf(prodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != "8080" || c.Location.String() != "Europe/Berlin" || len(c.InvokerEmails) != 2 ||
		c.Dataflow.Parameters["warehouse"] != "bq://inventory-prod.inventory" || c.Dataflow.MaxWorkers != 4 ||
		c.Dataflow.DateParameter != "date" || c.Wait != 100*time.Second || c.Host != "" || !slices.Equal(c.Audiences, []string{"https://nightly-trigger-abc-ew.a.run.app", "https://nightly-trigger-123456789012.europe-west1.run.app"}) {
		t.Fatalf("config = %+v", c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := map[string]struct {
		edit    func(map[string]string)
		wantErr string
	}{
		"default mode is production": {func(m map[string]string) { delete(m, "MODE"); delete(m, "PROJECT") }, "PROJECT"},
		"no audience":                {func(m map[string]string) { delete(m, "EXPECTED_AUDIENCE") }, "EXPECTED_AUDIENCE"},
		"no invoker":                 {func(m map[string]string) { delete(m, "INVOKER_SA_EMAIL") }, "INVOKER_SA_EMAIL"},
		"bad mode":                   {func(m map[string]string) { m["MODE"] = "staging" }, "MODE"},
		"bad port":                   {func(m map[string]string) { m["PORT"] = "80x" }, "PORT"},
		"bad zone":                   {func(m map[string]string) { m["TIME_ZONE"] = "Mars/Base" }, "TIME_ZONE"},
		"bad template path":          {func(m map[string]string) { m["TEMPLATE_GCS_PATH"] = "/tmp/t.json" }, "gs://"},
		"date in parameters":         {func(m map[string]string) { m["TEMPLATE_PARAMETERS"] = "date=2026-01-01" }, "must not set date"},
		"bad parameters":             {func(m map[string]string) { m["TEMPLATE_PARAMETERS"] = "output" }, "key=value"},
		"bad max workers":            {func(m map[string]string) { m["MAX_WORKERS"] = "-1" }, "MAX_WORKERS"},
		"local without command":      {func(m map[string]string) { m["MODE"] = "local" }, "NIGHTLY_COMMAND"},
		"bad run wait":               {func(m map[string]string) { m["RUN_WAIT"] = "soon" }, "RUN_WAIT"},
		"local bad max runs": {func(m map[string]string) {
			m["MODE"], m["NIGHTLY_COMMAND"], m["MAX_RUNS"] = "local", "bin/nightly", "0"
		}, "MAX_RUNS"},
		"local bad cron": {func(m map[string]string) {
			m["MODE"], m["NIGHTLY_COMMAND"], m["LOCAL_CRON"] = "local", "bin/nightly", "3am"
		}, "LOCAL_CRON"},
	}
	for name, tc := range tests {
		env := prodEnv()
		tc.edit(env)
		if _, err := loadConfig(envOf(env)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.wantErr)
		}
	}
}

// TestRunLocal starts the service in local mode on a free port, launches a
// run of a stand-in nightly command, reads its status, and shuts down.
func TestRunLocal(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)
	lis.Close()
	cfg, err := loadConfig(envOf(map[string]string{
		"MODE": "local", "PORT": port, "NIGHTLY_COMMAND": "echo reports", "LOCAL_CRON": "off",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()

	base := "http://127.0.0.1:" + port
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err = http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The local trigger checks no token: it answers on loopback only.
	if cfg.Host != "127.0.0.1" || cfg.MaxRuns != 2 || cfg.Wait != 0 {
		t.Errorf("local config: host %q, max runs %d, wait %v; want 127.0.0.1, 2, 0", cfg.Host, cfg.MaxRuns, cfg.Wait)
	}
	addrs, _ := net.InterfaceAddrs()
	checked := 0
	for _, a := range addrs {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLoopback() || ip.IP.IsLinkLocalUnicast() {
			continue
		}
		checked++
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.IP.String(), port), time.Second); err == nil {
			c.Close()
			t.Errorf("the local trigger answers on %s, not only on loopback", ip.IP)
		}
	}
	t.Logf("checked %d non-loopback addresses", checked)
	resp, err = http.Post(base+"/v1/nightly?date=2026-11-24", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	var st struct{ State, Result string }
	for deadline := time.Now().Add(10 * time.Second); st.State != "DONE"; {
		resp, err := http.Get(base + "/v1/nightly/2026-11-24")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("run state %q after 10s", st.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Result != "reports --date=2026-11-24" {
		t.Errorf("result = %q, want the command's output", st.Result)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("service did not shut down")
	}
}
