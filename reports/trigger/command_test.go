package trigger_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/reports/trigger"
)

// TestHelperProcess is the nightly command CommandRunner runs in the tests.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("TRIGGER_HELPER") != "1" {
		return
	}
	last := os.Args[len(os.Args)-1]
	if last == "--date=1999-01-01" {
		fmt.Fprintln(os.Stderr, "no data for 1999")
		os.Exit(3)
	}
	fmt.Println("progress...")
	fmt.Println("reports/" + strings.TrimPrefix(last, "--date=") + "/index.html")
	os.Exit(0)
}

func TestCommandRunner(t *testing.T) {
	t.Setenv("TRIGGER_HELPER", "1")
	run := trigger.CommandRunner([]string{os.Args[0], "-test.run=^TestHelperProcess$", "--"}, "--date")
	got, err := run(context.Background(), "2026-11-24")
	if err != nil || got != "reports/2026-11-24/index.html" {
		t.Fatalf("run = %q, %v", got, err)
	}
	if _, err := run(context.Background(), "1999-01-01"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("failing command: err = %v", err)
	}
	if _, err := trigger.CommandRunner(nil, "--date")(context.Background(), "2026-11-24"); err == nil {
		t.Fatal("empty command line ran")
	}
}
