// Command deploycheck rehearses the production launch offline (make
// deploy-check): it builds the three binaries as Beam's Dataflow runner and
// the Dockerfiles need them (static, linux/amd64), launches cmd/stream and
// cmd/nightly with --runner=dataflow for real against an in-process fake of
// the Dataflow REST API, a local OAuth token endpoint and fake-gcs-server, up
// to and including jobs.create, rehearses the trigger's Flex Template launch
// and the Scheduler job against the gRPC fakes, and runs the cross-checks of
// deploy/. It prints one line per step and a last line
// "deploy-check: N/M steps ok", and exits non-zero unless all passed.
//
// Run it from the repository root (go run ./cmd/tools/deploycheck). Nothing
// leaves the machine: every endpoint is on 127.0.0.1, and the service-account
// key is generated for the run and deleted with its temporary directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
)

// project and friends are the names the rehearsal launches with.
const (
	project    = "deploycheck"
	region     = "europe-west1"
	reportDate = "2026-11-24"
)

// projectNumber is the project's number in the trigger's audience.
const projectNumber = "123456789012"

// streamFlagVars are the placeholders of deploy/stream-flags.yaml and the
// values the rehearsal fills in (the runbook's envsubst does the same with
// the operator's values).
var streamFlagVars = map[string]string{
	"PROJECT":    project,
	"REGION":     region,
	"SUBNETWORK": "regions/" + region + "/subnetworks/inventory",
}

func sa(name string) string { return name + "@" + project + ".iam.gserviceaccount.com" }

type step struct {
	name      string
	needsBins bool          // skipped when the build failed
	limit     time.Duration // the step fails after this long
	run       func(ctx context.Context, c *check) (string, error)
}

// check is the state the steps share.
type check struct {
	root string // repository root
	tmp  string // scratch directory, outside the repository
	bins map[string]string
	logs *os.File // subprocess output, kept for a failure
}

func main() {
	root := flag.String("root", ".", "repository root")
	keep := flag.Bool("keep", false, "keep the scratch directory (binaries, logs, credentials of the run)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	abs, tmp, err := rehearse.Workdir("deploycheck", *root, "deploy/cloudbuild.yaml")
	if err != nil {
		fatal(err)
	}
	cleanup := func() {
		if !*keep {
			os.RemoveAll(tmp)
		}
	}
	defer cleanup()
	logs, err := os.Create(filepath.Join(tmp, "subprocesses.log"))
	if err != nil {
		fatal(err)
	}
	defer logs.Close()

	c := &check{root: abs, tmp: tmp, bins: map[string]string{}, logs: logs}
	steps := []step{
		// A cold build of the three (a separate build cache from the cgo
		// builds of make test) takes minutes on 2 cores; a warm one seconds.
		{"build", false, 15 * time.Minute, buildStep},
		{"stream launch", true, 4 * time.Minute, streamStep},
		{"nightly launch", true, 3 * time.Minute, nightlyStep},
		{"trigger launch and schedule", false, time.Minute, triggerStep},
		{"deploy files", false, 5 * time.Minute, deployFilesStep},
	}
	ok := 0
	for i, s := range steps {
		start := time.Now()
		var detail string
		var err error
		if s.needsBins && len(c.bins) == 0 {
			err = fmt.Errorf("skipped: the build failed")
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), s.limit)
			detail, err = s.run(ctx, c)
			cancel()
		}
		took := time.Since(start).Round(100 * time.Millisecond)
		if err != nil {
			fmt.Printf("FAIL %d/%d %s (%v): %v\n", i+1, len(steps), s.name, took, oneLine(err.Error()))
			continue
		}
		ok++
		fmt.Printf("ok   %d/%d %s (%v): %s\n", i+1, len(steps), s.name, took, detail)
	}
	if ok != len(steps) {
		logs.Sync()
		if b, err := os.ReadFile(logs.Name()); err == nil && len(b) > 0 {
			fmt.Fprintf(os.Stderr, "--- subprocess output (last 8 KiB) ---\n%s\n", tail(b, 8<<10))
		}
	}
	fmt.Printf("deploy-check: %d/%d steps ok\n", ok, len(steps))
	if ok != len(steps) {
		logs.Close()
		cleanup()
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
