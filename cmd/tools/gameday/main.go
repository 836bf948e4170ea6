// Command gameday plays a production fortnight offline (make game-day): the
// configuration as deployed (deploy/stream-flags.yaml, deploy/cloudbuild.yaml's
// trigger environment and template parameters, the runbook's commands) runs
// against local stand-ins of Google Cloud, and the jobs run on Prism with
// exactly the command lines Dataflow's template launcher would give them.
//
// The stand-ins: the local Pub/Sub (internal/emulator/pubsubemu), the
// BigQuery fake (Storage Write API and REST; its queries answered by DuckDB,
// internal/testkit/bqfake/duckq), fake-gcs-server, the fake Dataflow API
// (internal/testkit/gcpfake) whose launches an adapter runs as cmd/nightly on
// Prism, and a fake of Google's ID-token issuer behind the trigger's OIDC
// check. The trigger service is built as cmd/trigger builds it in
// production, from cloudbuild.yaml's environment.
//
// It prints one line per day and a last line "game-day: N days played, M/M
// closing stock matches, K failures surfaced", and exits non-zero if any
// night's closing stock differs from an independent replay of the events
// (internal/testkit/oracle) or a refusal reached the caller as a success.
// What differs from production is printed before the days ("differs: ..."),
// and in deploy/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"

	// The operator's commands run in this process, as cmd/inventory links them.
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
)

// The project the fortnight is played in, and the names the runbook fills in.
const (
	project       = "gameday"
	region        = "europe-west1"
	projectNumber = "123456789012"
	streamJobName = "inventory-stream"
)

// streamFlagVars fill deploy/stream-flags.yaml's placeholders, as the
// runbook's envsubst does.
var streamFlagVars = map[string]string{
	"PROJECT":    project,
	"REGION":     region,
	"SUBNETWORK": "regions/" + region + "/subnetworks/inventory",
}

func main() {
	root := flag.String("root", ".", "repository root")
	keep := flag.Bool("keep", false, "keep the scratch directory (binaries, logs)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	t0 := time.Now()
	abs, tmp, err := rehearse.Workdir("gameday", *root, "deploy/stream-flags.yaml")
	if err != nil {
		fatal(err)
	}
	logDir = tmp
	code := run(abs, tmp, t0)
	if *keep || code != 0 {
		fmt.Fprintf(os.Stderr, "logs and binaries kept in %s\n", tmp)
	} else {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

func run(root, tmp string, t0 time.Time) int {
	ctx := context.Background()
	fmt.Printf("building cmd/stream and cmd/nightly (with the Beam and DuckDB build cache cold: minutes on 2 cores) ...\n")
	bins := map[string]string{}
	for _, name := range []string{"stream", "nightly"} {
		bins[name] = filepath.Join(tmp, name)
		cmd := exec.Command("go", "build", "-o", bins[name], "./cmd/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Printf("FAIL build cmd/%s: %v\n%s\n", name, err, out)
			return 1
		}
	}
	fmt.Printf("built in %s\n", time.Since(t0).Round(time.Second))
	// The operator's commands (the CLI, in this process) and the jobs run
	// from the scratch directory: nothing reads or writes the repository's
	// ./warehouse.
	if err := os.Chdir(tmp); err != nil {
		fatal(err)
	}
	a := &adapter{root: root, nightly: bins["nightly"], dir: tmp}
	st, err := startStand(ctx, root, a)
	if err != nil {
		fmt.Printf("FAIL stand-ins: %v\n", err)
		return 1
	}
	defer st.close()
	g := &game{root: root, st: st, ad: a, t0: t0,
		stream: &streamJob{bin: bins["stream"], dir: tmp, env: append(os.Environ(), st.envVars()...)}}
	defer g.stream.stop()
	for _, l := range differences {
		fmt.Println("differs: " + l)
	}
	err = g.play(ctx)
	fmt.Println(g.summary())
	if err != nil {
		fmt.Printf("FAIL: %v\n", err)
		for _, name := range []string{"stream", "nightly", "trigger"} {
			if t := tailLog(name, 3000); t != "" {
				fmt.Fprintf(os.Stderr, "--- %s (last lines) ---\n%s\n", name, t)
			}
		}
		return 1
	}
	if !g.ok() {
		return 1
	}
	return 0
}

// differences is what the fortnight does not do as production does.
var differences = []string{
	"the jobs run on Prism, not Dataflow: the command lines are the template launcher's with --runner=prism",
	"BigQuery is the fake: writes through the Storage Write API and load jobs as in production, queries answered by DuckDB (TIMESTAMP literals and FARM_FINGERPRINT rewritten, see internal/testkit/bqfake/duckq)",
	"the release's --update is a stop and a start on Prism (no in-place update): the new job restores its state from the warehouse (restore scope full, Prism's default, where Dataflow's is recent)",
	"a failed bundle fails the job on Prism, where Dataflow retries it (failing loudly each time) until the fix: the game relaunches the stream after a permanent error",
	"inventory setup runs without the Scheduler flags of runbook step 5 (make deploy-check rehearses the Scheduler job)",
	"the trigger polls its run every second (production: 10 s); Scheduler's retries are made at once, not after Retry-After",
	"the Scheduler's calls name the day (?date=), the days being past ones; production's call names none and the trigger takes yesterday",
	"the Scheduler job's HTTP call is made by this program with an ID token from a fake issuer of Google's keys; Cloud Run's invoker check is not in front",
	"event times are the past fortnight's, published in a few minutes: a live threshold change (made now) applies to the stream at once, and to reports of days after it only",
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
