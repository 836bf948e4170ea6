// Command streambench measures the streaming job end to end on one machine:
// generated adjustments published to the local Pub/Sub, the job on Prism,
// alerts read back from low-stock-consumer. In the same run it measures the
// seed's consumer (loaders/broker.Consumer: a plain Go subscriber applying
// the ledger in a map) as the baseline.
//
//	go run ./cmd/tools/streambench --events=100000 --rate=1000 --latency_for=20s
//
// It reports, for both: events/s from the first publish to the last event
// processed, with everything published as fast as possible; then, for the
// job, p50/p99 latency from publish to alert at --rate events/s; and the
// peak RSS of the process during each phase. With --floor it runs, in the
// job's place, a pipeline of the job's shape without its per-event work
// (floor.go): how fast any such pipeline runs on Prism here.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/cmd/tools/internal/benchkit"
	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/broker"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
	"github.com/inventory-events/inventory/pipelines/stream"
	"github.com/inventory-events/inventory/transforms/pubsubio"
	"github.com/inventory-events/inventory/transforms/stock"
)

var (
	events     = flag.Int("events", 100_000, "events for the throughput phase")
	skus       = flag.Int("skus", 200, "SKUs of the generated stream")
	locations  = flag.Int("locations", 5, "locations of the generated stream")
	rate       = flag.Int("rate", 1000, "events/s of the latency phase")
	latencyFor = flag.Duration("latency_for", 20*time.Second, "length of the latency phase (0: skip)")
	shards     = flag.Int("shards", stock.DefaultShards, "stock state shards of the job")
	maxMsgs    = flag.Int("max_messages", pubsubio.DefaultMaxMessages, "the job's --max_messages")
	batchWait  = flag.Duration("max_batch_wait", 0, "the job's --max_batch_wait (0: the job's default)")
	skipBase   = flag.Bool("skip_baseline", false, "do not run the baseline consumer")
	spread     = flag.Bool("spread", false, "put event i on key i mod (skus x locations), so that n events touch min(n, keys) keys (default: random keys)")
	results    = flag.String("results", "", "append one CSV line of the throughput phase to this file (header written if new)")
	serveEmu   = flag.Bool(benchkit.ServeEmulatorFlag, false, "internal: serve the local Pub/Sub and print its address (the benchmark's child process)")
	emuInProc  = flag.Bool("emulator_in_process", false, "run the local Pub/Sub in this process (its backlog then counts in the peak RSS)")
	memProfile = flag.String("memprofile", "", "write a heap profile at the end of the job's throughput phase here")
	memAt      = flag.Duration("memprofile_at", 0, "write the heap profile this long into the job's throughput phase instead")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the job's throughput phase here")
	floor      = flag.Bool("floor", false, "run the floor (floor.go) instead of the job: the job's shape on Prism without its per-event work")
	alertEvery = flag.Int("floor_alert_every", 400, "with --floor: one latency-phase event in this many raises an alert, about as many as the job raises (0: none)")
)

const project = "bench-project"

func main() {
	flag.Parse()
	beam.Init()
	// The job is cancelled at the end: its bundles in flight then log errors
	// that are the expected end (console.QuietCancel lowers them to DEBUG).
	slog.SetDefault(slog.New(console.QuietCancel(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	ctx := context.Background()
	run := run
	if *serveEmu {
		run = func(context.Context) error { return benchkit.ServeEmulator() }
	}
	if err := run(ctx); err != nil {
		// Not log.Fatal: with slog's default handler set, the log package
		// writes at INFO, which the WARN level above drops.
		fmt.Fprintln(os.Stderr, "streambench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// Event times: the throughput phase from start, the latency phase an
	// hour later, all in the past (validation refuses the far future).
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	if *floor && *results != "" {
		return fmt.Errorf("--results records the job's figures: not with --floor")
	}
	var base baseline
	if !*skipBase {
		var err error
		if base, err = runBaseline(ctx, start); err != nil {
			return err
		}
	}
	e, err := newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	gen, err := generate(*events, 2, start, e.dir)
	if err != nil {
		return err
	}
	benchkit.ResetPeakRSS()
	st := &stamps{at: map[string]time.Time{}}
	actx, stopAlerts := context.WithCancel(ctx)
	defer stopAlerts()
	ar := e.readAlerts(actx, st)
	jobDone := e.startJob(ctx, gen)
	if err := warmUp(ctx, e, ar, st, start); err != nil {
		return err
	}
	nEvents := len(gen.msgs)
	elapsed, err := throughput(ctx, e, ar, st, gen.msgs, start)
	if err != nil {
		return err
	}
	jobRate := float64(nEvents) / elapsed.Seconds()
	fmt.Printf("%s on Prism: %d events in %v: %.0f events/s, peak RSS %.0f MiB (%.0f MiB of it file-backed)\n",
		measured(), nEvents, elapsed.Round(time.Millisecond), jobRate, benchkit.PeakRSS(), benchkit.FileRSS())
	ar.take("")
	if base.rate > 0 {
		fmt.Printf("ratio %s/baseline: %.2f\n", measured(), jobRate/base.rate)
	}
	if *results != "" {
		if err := appendResult(*results, gen.keys, nEvents, jobRate, base.rate, benchkit.PeakRSS(), base.peak); err != nil {
			return err
		}
	}
	if *latencyFor > 0 {
		if err := measureLatency(ctx, e, ar, st, start); err != nil {
			return err
		}
	}
	stopAlerts()
	return cancelJobs(ctx, jobDone)
}

// measured names what runs in the job's place: "job", or "floor" with --floor.
func measured() string {
	if *floor {
		return "floor"
	}
	return "job"
}

// baseline is the seed's consumer's throughput phase: events/s and peak RSS in MiB.
type baseline struct{ rate, peak float64 }

// runBaseline runs the throughput phase through broker.Consumer, in an
// environment of its own.
func runBaseline(ctx context.Context, start time.Time) (baseline, error) {
	e, err := newEnv(ctx)
	if err != nil {
		return baseline{}, err
	}
	defer e.close()
	gen, err := generate(*events, 1, start, e.dir)
	if err != nil {
		return baseline{}, err
	}
	th, snap, err := loadRef(ctx, gen.thresholds, gen.snapshot)
	if err != nil {
		return baseline{}, err
	}
	benchkit.ResetPeakRSS()
	st := &stamps{at: map[string]time.Time{}}
	done := make(chan struct{})
	var stats broker.ConsumeStats
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(done)
		_, stats, err = broker.NewConsumer(e.admin, broker.ConsumeConfig{Subscription: stream.DefaultSubscription,
			DeadLetterTopic: stream.DefaultDeadLetterTopic, Format: "json", Thresholds: th, Start: snap,
			MaxIdle: 3 * time.Second, Interval: time.Hour,
			OnAlert: func(event.Key, *event.Adjustment, ledger.Result, int64) {}}).Consume(cctx)
	}()
	t0 := time.Now()
	if err := e.publish(ctx, gen.msgs, 0, st, true); err != nil {
		return baseline{}, err
	}
	// The consumer stops once idle for MaxIdle (3 s) after the last message.
	<-done
	elapsed := time.Since(t0) - 3*time.Second
	cancel()
	if err != nil {
		return baseline{}, fmt.Errorf("baseline consumer: %w", err)
	}
	b := baseline{rate: float64(stats.Received) / elapsed.Seconds(), peak: benchkit.PeakRSS()}
	fmt.Printf("baseline (broker.Consumer): %d events in %v: %.0f events/s, peak RSS %.0f MiB (%.0f MiB of it file-backed; %v)\n",
		stats.Received, elapsed.Round(time.Millisecond), b.rate, b.peak, benchkit.FileRSS(), stats)
	return b, nil
}

// startJob starts the streaming job on Prism, in process, on gen's reference
// data; the channel receives the end of its run.
func (e *env) startJob(ctx context.Context, gen generated) chan error {
	p, s := beam.NewPipelineWithRoot()
	cfg := stream.Config{Runner: "prism", InProcess: true, Project: project, Subscription: stream.DefaultSubscription,
		Thresholds: gen.thresholds, Snapshot: gen.snapshot, AlertTopic: stream.DefaultAlertTopic,
		DeadLetterTopic: stream.DefaultDeadLetterTopic, AlertEncoding: event.EncodingJSON,
		Warehouse: filepath.Join(e.dir, "warehouse"), Shards: *shards, MaxMessages: *maxMsgs, MaxBatchWait: *batchWait, PollInterval: 20 * time.Millisecond}
	if *floor {
		buildFloor(s, cfg, *alertEvery)
	} else {
		stream.Build(s, cfg)
	}
	jobDone := make(chan error, 1)
	go func() {
		_, err := stream.RunPrism(ctx, p)
		jobDone <- err
	}()
	return jobDone
}

// warmUp waits until the job answers a marker, before anything is timed.
func warmUp(ctx context.Context, e *env, ar *alertReader, st *stamps, start time.Time) error {
	warm := markers("warm", start)
	if err := e.publish(ctx, slices.Clone(warm), 0, st, false); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if _, err := ar.waitMarkers(wctx, warm); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	ar.take("")
	return nil
}

// throughput publishes msgs as fast as possible, then end markers, and
// returns the time from the first publish to the last marker's alert, with
// the profiles asked for.
func throughput(ctx context.Context, e *env, ar *alertReader, st *stamps, msgs []payload, start time.Time) (time.Duration, error) {
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return 0, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	if *memProfile != "" && *memAt > 0 {
		time.AfterFunc(*memAt, func() {
			if err := benchkit.WriteHeapProfile(*memProfile); err != nil {
				slog.Error("streambench", "err", err)
			}
		})
	}
	nEvents := len(msgs)
	end := markers("end", start.Add(time.Duration(nEvents)*time.Millisecond))
	if err := e.publish(ctx, append(msgs, end...), 0, st, true); err != nil {
		return 0, err
	}
	tctx, tcancel := context.WithTimeout(ctx, 30*time.Minute)
	last, err := ar.waitMarkers(tctx, end)
	tcancel()
	if err != nil {
		return 0, err
	}
	elapsed := last.Sub(t0)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" && *memAt == 0 {
		if err := benchkit.WriteHeapProfile(*memProfile); err != nil {
			return 0, err
		}
	}
	return elapsed, nil
}

// measureLatency publishes --latency_for of events at --rate and prints the
// publish to alert latency of this phase's alerts.
func measureLatency(ctx context.Context, e *env, ar *alertReader, st *stamps, start time.Time) error {
	n := int(latencyFor.Seconds() * float64(*rate))
	gen, err := generate(n, latencySeed, start.Add(time.Hour), e.dir)
	if err != nil {
		return err
	}
	benchkit.ResetPeakRSS()
	if err := e.publish(ctx, gen.msgs, *rate, st, false); err != nil {
		return err
	}
	endL := markers("lat", start.Add(2*time.Hour))
	if err := e.publish(ctx, slices.Clone(endL), 0, st, false); err != nil {
		return err
	}
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Minute)
	_, err = ar.waitMarkers(lctx, endL)
	lcancel()
	if err != nil {
		return err
	}
	// Only this phase's alerts: an alert of the throughput phase that
	// arrives now (its event reordered behind the end markers, or a
	// redelivery) would count its whole wait in the backlog.
	lat, late := ar.take(fmt.Sprintf("evt-%d-", latencySeed))
	fmt.Printf("%s latency at %d events/s for %v: %d alerts, p50 %v, p99 %v, max %v, peak RSS %.0f MiB (%.0f MiB of it file-backed; %d late alerts of the throughput phase not counted)\n",
		measured(), *rate, *latencyFor, len(lat), benchkit.Percentile(lat, 0.5).Round(time.Millisecond),
		benchkit.Percentile(lat, 0.99).Round(time.Millisecond), benchkit.Percentile(lat, 1).Round(time.Millisecond), benchkit.PeakRSS(), benchkit.FileRSS(), late)
	return nil
}
