package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// TestMain runs main in a child process when STREAM_TEST_MAIN is set, so
// the tests see the command's own exit status and output.
func TestMain(m *testing.M) {
	if os.Getenv("STREAM_TEST_MAIN") != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const sample = "../../testdata/inventory_adjustments.csv"

// runStream runs the command with args, without any Pub/Sub in the
// environment.
func runStream(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PUBSUB_") && !strings.HasPrefix(e, "GOOGLE_CLOUD_PROJECT=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "STREAM_TEST_MAIN=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// TestReplayWithoutPubSub is docs/streaming.md's replay: no project, no
// emulator. Alerts and dead letters go to the warehouse only, the job says
// so once; it needs no project.
func TestReplayWithoutPubSub(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "wh")
	_, stderr, code := runStream(t, "--runner=prism", "--input="+sample, "--warehouse="+wh)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "alerts and dead letters go to the warehouse only"); n != 1 {
		t.Errorf("the warehouse-only note appears %d times:\n%s", n, stderr)
	}
	count := func(sql string) int64 {
		rows, err := warehouse.QueryRows(context.Background(), wh, sql)
		if err != nil {
			t.Fatal(err)
		}
		return rows[0]["n"].(int64)
	}
	if n := count("SELECT count(*) AS n FROM dead_letters"); n != 6 {
		t.Errorf("%d dead letters in the warehouse, want the sample's 6", n)
	}
	if n := count("SELECT count(*) AS n FROM low_stock_alerts"); n == 0 {
		t.Error("no alerts in the warehouse")
	}
	if n := count("SELECT count(DISTINCT event_id) AS n FROM adjustments"); n != 594 {
		t.Errorf("%d adjustments, want 594", n)
	}

	// The same replay again into the same warehouse: --restore (the
	// default) rebuilds stock from it first, so every event it holds is a
	// duplicate: the history is not doubled, and stock and alerts stay.
	levels := count("SELECT count(*) AS n FROM stock_levels")
	alerts := count("SELECT count(DISTINCT alert_id) AS n FROM low_stock_alerts")
	_, stderr, code = runStream(t, "--runner=prism", "--input="+sample, "--warehouse="+wh)
	if code != 0 {
		t.Fatalf("second replay: exit %d:\n%s", code, stderr)
	}
	if n := count("SELECT count(*) AS n FROM adjustments WHERE status IN ('APPLIED', 'SUPERSEDED')"); n != 594 {
		t.Errorf("after a second replay %d adjustments applied or superseded, want the 594 of the first", n)
	}
	if n := count("SELECT count(*) AS n FROM adjustments WHERE status = 'DUPLICATE'"); n != 594 {
		t.Errorf("after a second replay %d adjustments are duplicates, want 594", n)
	}
	if n := count("SELECT count(*) AS n FROM stock_levels"); n != levels {
		t.Errorf("after a second replay %d stock_levels rows, want the %d of the first", n, levels)
	}
	if n := count("SELECT count(DISTINCT alert_id) AS n FROM low_stock_alerts"); n != alerts {
		t.Errorf("after a second replay %d distinct alerts, want the %d of the first", n, alerts)
	}
}

// TestFatalErrors: bad values fail before the pipeline is built, with one
// line on stderr naming the value.
func TestFatalErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--input=" + filepath.Join(dir, "missing.csv")}, `stream: --input "` + filepath.Join(dir, "missing.csv") + `": no such file or directory`},
		{[]string{"--input=" + sample, "--snapshot=" + filepath.Join(dir, "s.json")}, `--snapshot "` + filepath.Join(dir, "s.json") + `"`},
		{[]string{"--input=" + sample, "--thresholds=" + dir}, "is a directory"},
		{[]string{"--input=" + sample, "--alert_topic=alerts"}, `--alert_topic "alerts" needs --project`},
	} {
		_, stderr, code := runStream(t, append([]string{"--runner=prism", "--warehouse=" + filepath.Join(dir, "wh")}, c.args...)...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
		if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
			t.Errorf("%v: %d lines on stderr, want one:\n%s", c.args, lines, stderr)
		}
	}
}

// TestHelp: the job's own flags come first, grouped, then the runner's.
func TestHelp(t *testing.T) {
	_, stderr, _ := runStream(t, "--help")
	pos := func(s string) int {
		i := strings.Index(stderr, s)
		if i < 0 {
			t.Fatalf("--help lacks %q:\n%s", s, stderr)
		}
		return i
	}
	order := []string{"\nInput (", "\n  --subscription=", "\n  --input=", "\nOutput:", "\n  --warehouse=", "\n  --alert_topic=",
		"\nTuning:", "\n  --shards=", "\nWhere it runs", "\n  --runner=", "\n  --project=", "\nThe runner's other flags", "\n  --async"}
	for i := 1; i < len(order); i++ {
		if pos(order[i-1]) > pos(order[i]) {
			t.Errorf("--help shows %q after %q", order[i-1], order[i])
		}
	}
	if strings.Count(stderr, "  --input=") != 1 {
		t.Error("--input is listed twice")
	}
}
