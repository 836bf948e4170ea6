// Command soak runs the local stack (`inventory up`, the real binary, as a
// child process) under a steady load for a long time and watches its memory
// and goroutines: the soak benchmark of `make soak`, not a test.
//
//	go run ./cmd/tools/soak --rate 2000 --duration 30m --out soak.csv
//
// It builds cmd/inventory into a temporary directory (or runs --inventory),
// starts `inventory up` there on free ports with its own Pub/Sub data,
// warehouse and reports directories and the debug listener on, and waits
// until it is ready. It then publishes valid generated adjustments
// (internal/testkit/synth, JSON as `inventory publish` sends them, unique
// event ids) to inventory-topic at --rate events/s for --duration, while it
// drains low-stock-consumer and the dead-letter subscription as their
// consumers would. Every --sample it records the child's RSS (VmRSS), its
// goroutine count (/debug/pprof/goroutine), the events published and the
// adjustments rows stored so far, as one CSV line of --out (stored is -1
// when the count failed; the error is printed):
//
//	elapsed_s,rss_mib,goroutines,published,stored
//
// At the end it waits until every published event is stored, stops the
// child with SIGINT (it drains), and checks the warehouse: one adjustments
// row per event published, none missing, none applied twice. It prints a
// summary (RSS after minute 5 against the end, goroutines first against
// last) and exits 1 if an event is missing or applied twice. Ctrl-C ends
// the publishing early and goes on to the checks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/local" // the soak's local warehouse
)

var (
	inventoryBin = flag.String("inventory", "", "the inventory binary to run (empty: build ./cmd/inventory into the temporary directory)")
	rate         = flag.Int("rate", 2000, "events published per second")
	duration     = flag.Duration("duration", 30*time.Minute, "how long to publish")
	timeScale    = flag.Int("time_scale", 1, "event time runs this many times faster than the clock, ending at about now (2000: 30 min of publishing span 42 days, past the 8-day dedup horizon)")
	sample       = flag.Duration("sample", 10*time.Second, "time between two samples")
	out          = flag.String("out", "soak.csv", "the samples, as CSV")
	skus         = flag.Int("skus", 200, "SKUs of the generated stream")
	locations    = flag.Int("locations", 50, "locations of the generated stream (keys: skus x locations)")
	settle       = flag.Duration("settle", 10*time.Minute, "how long to wait, after the last publish, for every event to be stored")
	keep         = flag.Bool("keep", false, "keep the temporary directory (it is kept anyway when a check fails)")
)

const (
	project = "soak-project"
	// baselineAt is when the RSS baseline is taken: after warm-up (Prism,
	// DuckDB, the ledgers of every key).
	baselineAt = 5 * time.Minute
)

func main() {
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ok, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run() (ok bool, err error) {
	if *rate <= 0 || *sample <= 0 || *duration <= 0 {
		return false, errors.New("--rate, --sample and --duration must be positive")
	}
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return false, err
	}
	defer func() {
		if ok && !*keep {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintf(os.Stderr, "kept %s (up's log: %s)\n", dir, filepath.Join(dir, "up.log"))
		}
	}()
	bin, err := inventoryBinary(dir)
	if err != nil {
		return false, err
	}
	// Event times run --time_scale times faster than the clock and end at
	// about now, so that a run can reach the ledgers' 8-day dedup horizon:
	// before it, every key keeps every event id by design and memory grows
	// with the events; after it, pruning balances the growth.
	start := time.Now().UTC().Truncate(time.Second)
	gen := synth.Config{SKUs: *skus, Locations: *locations,
		Start: start.Add(-time.Minute - time.Duration(*timeScale)*(*duration))}
	wh := filepath.Join(dir, "warehouse")
	child, err := startStack(bin, dir, wh, gen)
	if err != nil {
		return false, err
	}
	defer child.kill()

	ctx := context.Background()
	os.Setenv("PUBSUB_EMULATOR_HOST", child.pubsub)
	admin, err := broker.NewAdmin(ctx, project)
	if err != nil {
		return false, err
	}
	defer admin.Close()
	cons := startConsumers(ctx, admin)
	defer cons.stop()
	smp, err := startSampler(ctx, child, wh, cons)
	if err != nil {
		return false, err
	}
	defer smp.close()

	res, err := publishAndSettle(ctx, admin, gen, smp, wh)
	if err != nil {
		return false, err
	}
	cons.stop()
	fmt.Fprintln(os.Stderr, "stopping inventory up (SIGINT) ...")
	res.stopErr = child.interrupt(3 * time.Minute)
	if res.stopErr != nil {
		fmt.Fprintln(os.Stderr, "inventory up did not stop cleanly:", res.stopErr)
	}
	return check(ctx, wh, res, smp, cons)
}

// inventoryBinary returns --inventory, or builds ./cmd/inventory into dir.
func inventoryBinary(dir string) (string, error) {
	if *inventoryBin != "" {
		return *inventoryBin, nil
	}
	bin := filepath.Join(dir, "inventory")
	fmt.Fprintln(os.Stderr, "building ./cmd/inventory (minutes when the build cache is cold) ...")
	b := exec.Command("go", "build", "-o", bin, "./cmd/inventory")
	b.Stdout, b.Stderr = os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		return "", fmt.Errorf("build inventory: %w", err)
	}
	return bin, nil
}

// startStack writes the reference data of gen and starts `inventory up` on
// it, in dir, storing to the warehouse wh.
func startStack(bin, dir, wh string, gen synth.Config) (*upChild, error) {
	snap, th, err := writeReference(dir, gen)
	if err != nil {
		return nil, err
	}
	child, err := startUp(bin, dir, "--port", "0", "--trigger-port", "0", "--ops-port", "0", "--host", "127.0.0.1", "--no-cron",
		"--data-dir", filepath.Join(dir, "pubsub"), "--warehouse", wh, "--reports", filepath.Join(dir, "reports"),
		"--snapshot", snap, "--thresholds", th, "--debug-addr", "127.0.0.1:0", "--project", project)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "inventory up ready (pid %d, pubsub %s, %s); publishing %d events/s for %s over %d keys\n",
		child.cmd.Process.Pid, child.pubsub, child.debug, *rate, *duration, *skus**locations)
	return child, nil
}

// consumers drain low-stock-consumer and the dead-letter subscription, as
// their consumers would, counting what they read.
type consumers struct {
	alerts, deadLetters atomic.Int64
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
}

func startConsumers(ctx context.Context, admin *broker.Admin) *consumers {
	c := &consumers{}
	ctx, c.cancel = context.WithCancel(ctx)
	for sub, n := range map[string]*atomic.Int64{names.AlertSubscription: &c.alerts, names.DeadLetterSubscription: &c.deadLetters} {
		c.wg.Go(func() { drain(ctx, admin, sub, n) })
	}
	return c
}

// stop ends the drains and waits for them; it may be called again.
func (c *consumers) stop() {
	c.cancel()
	c.wg.Wait()
}

// outcome is what the run observed, for the checks.
type outcome struct {
	total, failed, stored int64
	stopErr               error
}

// publishAndSettle publishes until --duration or Ctrl-C, then waits up to
// --settle for every event to be stored, and stops the sampler.
func publishAndSettle(ctx context.Context, admin *broker.Admin, gen synth.Config, smp *sampler, wh string) (outcome, error) {
	pubCtx, stopPub := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	pubCtx, cancelPub := context.WithTimeout(pubCtx, *duration)
	failed, err := publish(pubCtx, admin, gen, &smp.published)
	cancelPub()
	stopPub()
	smp.publishing.Store(false)
	if err != nil {
		return outcome{}, err
	}
	res := outcome{total: smp.published.Load(), failed: failed, stored: -1}
	fmt.Fprintf(os.Stderr, "%s  stopped publishing: %d published, %d failed; waiting up to %s for every event to be stored\n",
		clock(time.Since(smp.t0)), res.total, failed, *settle)
	for deadline := time.Now().Add(*settle); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if res.stored, err = warehouse.QueryInt(ctx, wh, "SELECT count(DISTINCT event_id) FROM adjustments"); err == nil && res.stored >= res.total {
			break
		}
	}
	smp.take()
	smp.stop()
	if res.stored < res.total {
		fmt.Fprintf(os.Stderr, "only %d of %d events stored after %s\n", res.stored, res.total, *settle)
	}
	return res, nil
}

// check checks the warehouse as the child left it: every event stored, none
// applied twice; it prints the summary and the verdict.
func check(ctx context.Context, wh string, res outcome, smp *sampler, cons *consumers) (bool, error) {
	rows, err1 := warehouse.QueryInt(ctx, wh, "SELECT count(*) FROM adjustments")
	distinct, err2 := warehouse.QueryInt(ctx, wh, "SELECT count(DISTINCT event_id) FROM adjustments")
	twice, err3 := warehouse.QueryInt(ctx, wh, `SELECT count(*) FROM (SELECT event_id FROM adjustments WHERE status = 'APPLIED'
	  GROUP BY event_id HAVING count(*) > 1)`)
	if err := errors.Join(err1, err2, err3); err != nil {
		return false, fmt.Errorf("checks: %w", err)
	}
	// Publish to stored, from the rows' own times.
	lat, err := warehouse.QueryRows(ctx, wh, `SELECT quantile_cont(ms, 0.5) AS p50, quantile_cont(ms, 0.99) AS p99,
	  max(ms) AS max, count(*) FILTER (WHERE ms > 10000) AS over10s
	  FROM (SELECT date_diff('millisecond', publish_time, ingest_time) AS ms FROM adjustments)`)
	if err != nil || len(lat) != 1 {
		return false, fmt.Errorf("checks: latency: %w", err)
	}
	summarize(os.Stderr, smp.all())
	fmt.Fprintf(os.Stderr, "published %d (%d failed), adjustments rows %d, distinct event ids %d, missing %d, applied twice %d, alerts read %d, dead letters %d\n",
		res.total, res.failed, rows, distinct, res.total-distinct, twice, cons.alerts.Load(), cons.deadLetters.Load())
	fmt.Fprintf(os.Stderr, "publish to stored: p50 %v ms, p99 %v ms, max %v ms; %v events over 10 s\n",
		lat[0]["p50"], lat[0]["p99"], lat[0]["max"], lat[0]["over10s"])
	fmt.Fprintf(os.Stderr, "samples in %s\n", *out)
	ok := distinct == res.total && twice == 0 && res.failed == 0 && res.stopErr == nil
	if ok {
		fmt.Fprintln(os.Stderr, "PASS: every event stored, none applied twice")
	} else {
		fmt.Fprintln(os.Stderr, "FAIL")
	}
	return ok, nil
}
