package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain runs main in a child process when NIGHTLY_TEST_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("NIGHTLY_TEST_MAIN") != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runNightly runs the command in dir with args.
func runNightly(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NIGHTLY_TEST_MAIN=1")
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

// TestFatalErrorsArePrinted: bad flags exit 1 with one line on stderr
// naming the value, at the default (WARN) log level: a fatal error is
// never filtered out by the log level.
func TestFatalErrorsArePrinted(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--date=yesterday"}, `--date "yesterday": want YYYY-MM-DD`},
		{[]string{"--date=2026-13-01"}, `--date "2026-13-01" is not a calendar date`},
		{[]string{"--timezone=Mars/Base"}, "unknown time zone Mars/Base"},
		{[]string{"--date=2026-11-24", "--input=missing.csv"}, `--input "missing.csv": no such file`},
		{[]string{"--date=2026-11-24", "--snapshot=nosnap.json"}, `--snapshot "nosnap.json"`},
	} {
		_, stderr, code := runNightly(t, dir, c.args...)
		if code != 1 || !strings.HasPrefix(stderr, "nightly: ") || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want one line with %q", c.args, code, stderr, c.want)
		}
	}
}

// TestDefaultOutputAndSummary: without --output the report goes to
// ./reports-out (not ./reports, the renderers' Go package), and a run
// prints the report's path and one summary line.
func TestDefaultOutputAndSummary(t *testing.T) {
	dir := t.TempDir()
	td, _ := filepath.Abs("../../testdata")
	stdout, stderr, code := runNightly(t, dir, "--date=2026-11-24", "--input="+td+"/inventory_adjustments.csv",
		"--snapshot="+td+"/inventory_state.json", "--thresholds="+td+"/thresholds.csv", "--warehouse=wh")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	report := filepath.Join(dir, "reports-out", "2026-11-24", "index.html")
	if _, err := os.Stat(report); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || lines[0] != "report: "+report || !strings.HasPrefix(lines[1], "2026-11-24: 60 keys, 594 adjustments (6 invalid), 60 mismatches with the stream; opening: the snapshot, and the adjustments since; ") {
		t.Fatalf("stdout %q", stdout)
	}
	// The next day: the warehouse has no adjustments (the run above read a
	// CSV) and no stream wrote stock_levels: a day without movement, not a
	// refusal, and the earlier daily_summary is not its opening stock.
	stdout, stderr, code = runNightly(t, dir, "--date=2026-11-25", "--warehouse=wh")
	if code != 0 || !strings.Contains(stdout, "2026-11-25: 0 keys, 0 adjustments") {
		t.Fatalf("empty day: exit %d, %q %q", code, stdout, stderr)
	}
}
