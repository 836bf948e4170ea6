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
// peak RSS of the process during each phase.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
	"github.com/inventory-events/inventory/pipelines/stream"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubsrc"
	"github.com/inventory-events/inventory/transforms/stock"
)

var (
	events     = flag.Int("events", 100_000, "events for the throughput phase")
	skus       = flag.Int("skus", 200, "SKUs of the generated stream")
	locations  = flag.Int("locations", 5, "locations of the generated stream")
	rate       = flag.Int("rate", 1000, "events/s of the latency phase")
	latencyFor = flag.Duration("latency_for", 20*time.Second, "length of the latency phase (0: skip)")
	shards     = flag.Int("shards", stock.DefaultShards, "stock state shards of the job")
	maxMsgs    = flag.Int("max_messages", 1000, "the job's --max_messages")
	skipBase   = flag.Bool("skip_baseline", false, "do not run the baseline consumer")
	spread     = flag.Bool("spread", false, "put event i on key i mod (skus x locations), so that n events touch min(n, keys) keys (default: random keys)")
	results    = flag.String("results", "", "append one CSV line of the throughput phase to this file (header written if new)")
	serveEmu   = flag.Bool("serve_emulator", false, "internal: serve the local Pub/Sub and print its address (the benchmark's child process)")
	emuInProc  = flag.Bool("emulator_in_process", false, "run the local Pub/Sub in this process (its backlog then counts in the peak RSS)")
	memProfile = flag.String("memprofile", "", "write a heap profile at the end of the job's throughput phase here")
	memAt      = flag.Duration("memprofile_at", 0, "write the heap profile this long into the job's throughput phase instead")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the job's throughput phase here")
)

const project = "bench-project"

// touched is how many keys the throughput phase's events touch.
var touched int

func main() {
	flag.Parse()
	beam.Init()
	// The job is cancelled at the end: its bundles in flight then log errors
	// that are the expected end (console.QuietCancel lowers them to DEBUG).
	slog.SetDefault(slog.New(console.QuietCancel(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	ctx := context.Background()
	run := run
	if *serveEmu {
		run = func(context.Context) error { return serveEmulator() }
	}
	if err := run(ctx); err != nil {
		// Not log.Fatal: with slog's default handler set, the log package
		// writes at INFO, which the WARN level above drops.
		fmt.Fprintln(os.Stderr, "streambench:", err)
		os.Exit(1)
	}
}

type env struct {
	stopEmu func()
	admin   *broker.Admin
	pub     *pubsub.Publisher
	dir     string
}

// startEmulator starts the local Pub/Sub: in a child process (this binary
// with --serve_emulator), so that the peak RSS measured here is the job's
// and the consumer's, not the broker's backlog; or, with
// --emulator_in_process, in this process. It returns its address.
func startEmulator() (addr string, stop func(), err error) {
	if *emuInProc {
		srv, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
		if err != nil {
			return "", nil, err
		}
		return srv.Addr(), func() { srv.Close() }, nil
	}
	cmd := exec.Command(os.Args[0], "--serve_emulator")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the emulator: %w", err)
	}
	stop = func() { in.Close(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the emulator's address: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// serveEmulator is the child of startEmulator: it serves until its stdin
// closes.
func serveEmulator() error {
	srv, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Println(srv.Addr())
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

func newEnv(ctx context.Context) (*env, error) {
	addr, stopEmu, err := startEmulator()
	if err != nil {
		return nil, err
	}
	os.Setenv("PUBSUB_EMULATOR_HOST", addr)
	admin, err := broker.NewAdmin(ctx, project)
	if err != nil {
		return nil, err
	}
	if _, err := admin.Setup(ctx, broker.SetupConfig{Project: project}); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	dir, err := os.MkdirTemp("", "streambench")
	if err != nil {
		return nil, err
	}
	pub := admin.Client.Publisher(names.Topic)
	pub.PublishSettings.CountThreshold = 500
	pub.PublishSettings.DelayThreshold = 5 * time.Millisecond
	return &env{stopEmu: stopEmu, admin: admin, pub: pub, dir: dir}, nil
}

func (e *env) close() {
	e.pub.Stop()
	e.admin.Close()
	e.stopEmu()
	os.RemoveAll(e.dir)
}

// stamps records when each event was published.
type stamps struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (s *stamps) set(id string, t time.Time) {
	s.mu.Lock()
	s.at[id] = t
	s.mu.Unlock()
}

func (s *stamps) get(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[id]
	return t, ok
}

// publish publishes payloads, paced at perSec (0: as fast as possible),
// and records when each was published in st (markers only if markersOnly:
// the throughput phase measures no other latency, and a million stamps
// would weigh on the peak RSS it reports). It clears each entry of msgs
// once Pub/Sub has it, so that a million payloads (250 MB) do not weigh on
// that peak either while the job runs: pass a copy of what is needed after.
func (e *env) publish(ctx context.Context, msgs []payload, perSec int, st *stamps, markersOnly bool) error {
	var results []*pubsub.PublishResult
	done := 0 // msgs[:done] are published and cleared
	wait := func() error {
		for _, r := range results {
			if _, err := r.Get(ctx); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		n := done + len(results)
		clear(msgs[done:n])
		done = n
		results = results[:0]
		return nil
	}
	start := time.Now()
	for i, m := range msgs {
		if perSec > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perSec))); d > 0 {
				time.Sleep(d)
			}
		}
		if !markersOnly || strings.HasPrefix(m.id, "marker-") {
			st.set(m.id, time.Now())
		}
		results = append(results, e.pub.Publish(ctx, &pubsub.Message{Data: m.data}))
		if len(results) == 10_000 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}

type payload struct {
	id   string
	data []byte
}

// generate returns n valid adjustments as JSON payloads, with thresholds
// and a snapshot written to dir. Event times start at start.
func generate(n int, seed uint64, start time.Time, dir string) ([]payload, string, string, error) {
	cfg := synth.Config{Events: n, SKUs: *skus, Locations: *locations, Seed: seed, Start: start, Span: time.Duration(n) * time.Millisecond}
	cfg.Defaults()
	var buf bytes.Buffer
	if err := synth.Generate(&buf, cfg); err != nil {
		return nil, "", "", err
	}
	cr, err := event.NewCSVReader(&buf, "synth")
	if err != nil {
		return nil, "", "", err
	}
	var out []payload
	keys := map[event.Key]struct{}{}
	for {
		var a event.Adjustment
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || event.Validate(&a, time.Now()) != nil {
			continue
		}
		if *spread {
			k := len(out) % (cfg.SKUs * cfg.Locations)
			a.SKU, a.LocationID = synth.SKU(k%cfg.SKUs), synth.Location(k/cfg.SKUs)
		}
		keys[a.Key()] = struct{}{}
		a.EventID = fmt.Sprintf("%s-%d", a.EventID, seed)
		data, err := event.MarshalJSON(&a)
		if err != nil {
			return nil, "", "", err
		}
		out = append(out, payload{id: a.EventID, data: data})
	}
	touched = len(keys)
	th := filepath.Join(dir, "thresholds.csv")
	var tb bytes.Buffer
	if err := synth.WriteThresholds(&tb, cfg); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(th, tb.Bytes(), 0o644); err != nil {
		return nil, "", "", err
	}
	snap := filepath.Join(dir, "state.json")
	if err := os.WriteFile(snap, snapshot.Marshal(synth.Snapshot(cfg)), 0o644); err != nil {
		return nil, "", "", err
	}
	return out, th, snap, nil
}

// markers returns one event per shard of keys no other event uses, each
// raising a LOW alert: when all their alerts are out, every shard has
// processed what was published before them.
func markers(tag string, at time.Time) []payload {
	var out []payload
	seen := map[int]bool{}
	for i := 0; len(seen) < *shards; i++ {
		sku := fmt.Sprintf("MARK-%s-%d", tag, i)
		sh := event.Key{SKU: sku, LocationID: "BENCH"}.Shard(*shards)
		if seen[sh] {
			continue
		}
		seen[sh] = true
		a := event.Adjustment{EventID: "marker-" + sku, SKU: sku, LocationID: "BENCH", Reason: event.Received,
			Quantity: 1, EventTime: at.UnixMicro(), Source: "bench"}
		data, _ := event.MarshalJSON(&a)
		out = append(out, payload{id: a.EventID, data: data})
	}
	return out
}

// latencySeed is the synth seed of the latency phase's events (their ids
// start with evt-3-).
const latencySeed = 3

// alertReader pulls low-stock-consumer and records publish->alert latency.
type alertReader struct {
	mu        sync.Mutex
	latencies []latency
	markers   map[string]time.Time
	unstamped int // alerts of events with no publish stamp
}

// latency is the publish->alert time of one event's alert.
type latency struct {
	id string
	d  time.Duration
}

func (e *env) readAlerts(ctx context.Context, st *stamps) *alertReader {
	ar := &alertReader{markers: map[string]time.Time{}}
	sub := pubsubsrc.SubscriptionPath(project, names.AlertSubscription)
	c := e.admin.Client.SubscriptionAdminClient
	go func() {
		for ctx.Err() == nil {
			resp, err := c.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 1000})
			if err != nil {
				continue
			}
			now := time.Now()
			var acks []string
			for _, rm := range resp.GetReceivedMessages() {
				acks = append(acks, rm.GetAckId())
				var al inventoryv1.LowStockAlert
				if protojson.Unmarshal(rm.GetMessage().GetData(), &al) != nil {
					continue
				}
				ar.mu.Lock()
				if strings.HasPrefix(al.GetEventId(), "marker-") {
					ar.markers[al.GetEventId()] = now
				} else if t, ok := st.get(al.GetEventId()); ok {
					ar.latencies = append(ar.latencies, latency{al.GetEventId(), now.Sub(t)})
				} else {
					ar.unstamped++ // an event of the throughput phase
				}
				ar.mu.Unlock()
			}
			if len(acks) > 0 {
				c.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: acks})
			}
		}
	}()
	return ar
}

// waitMarkers waits for the alerts of ms and returns when the last came.
func (ar *alertReader) waitMarkers(ctx context.Context, ms []payload) (time.Time, error) {
	for {
		ar.mu.Lock()
		var last time.Time
		n := 0
		for _, m := range ms {
			if t, ok := ar.markers[m.id]; ok {
				n++
				if t.After(last) {
					last = t
				}
			}
		}
		ar.mu.Unlock()
		if n == len(ms) {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for markers: %d of %d: %w", n, len(ms), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// take returns the latencies recorded since the last take for events whose
// id starts with prefix, and how many others (alerts of an earlier phase
// arriving late, or again) it dropped.
func (ar *alertReader) take(prefix string) (l []time.Duration, others int) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	for _, x := range ar.latencies {
		if strings.HasPrefix(x.id, prefix) {
			l = append(l, x.d)
		} else {
			others++
		}
	}
	ar.latencies = nil
	others += ar.unstamped
	ar.unstamped = 0
	return l, others
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// writeHeapProfile writes the live heap, after a GC, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memprofile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("memprofile: %w", err)
	}
	return f.Close()
}

// appendResult appends the throughput phase's figures to a CSV file.
func appendResult(path string, events int, jobRate, baseRate, jobPeak, basePeak float64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		fmt.Fprintln(f, "keys,events,job_events_per_s,baseline_events_per_s,ratio,job_peak_rss_mib,baseline_peak_rss_mib")
	}
	ratio := 0.0
	if baseRate > 0 {
		ratio = jobRate / baseRate
	}
	fmt.Fprintf(f, "%d,%d,%.0f,%.0f,%.2f,%.0f,%.0f\n", touched, events, jobRate, baseRate, ratio, jobPeak, basePeak)
	if err := f.Close(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// resetPeakRSS resets VmHWM (Linux); peakRSS reads it in MiB.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func run(ctx context.Context) error {
	// Event times: the throughput phase from start, the latency phase an
	// hour later, all in the past (validation refuses the far future).
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var baseRate, basePeak float64

	if !*skipBase {
		e, err := newEnv(ctx)
		if err != nil {
			return err
		}
		msgs, thPath, snapPath, err := generate(*events, 1, start, e.dir)
		if err != nil {
			return err
		}
		th, snap, err := loadRef(ctx, thPath, snapPath)
		if err != nil {
			return err
		}
		resetPeakRSS()
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
		if err := e.publish(ctx, msgs, 0, st, true); err != nil {
			return err
		}
		// The consumer stops once idle for MaxIdle (3 s) after the last
		// message.
		<-done
		elapsed := time.Since(t0) - 3*time.Second
		cancel()
		if err != nil {
			return fmt.Errorf("baseline consumer: %w", err)
		}
		baseRate = float64(stats.Received) / elapsed.Seconds()
		basePeak = peakRSS()
		fmt.Printf("baseline (broker.Consumer): %d events in %v: %.0f events/s, peak RSS %.0f MiB (%v)\n",
			stats.Received, elapsed.Round(time.Millisecond), baseRate, basePeak, stats)
		e.close()
	}

	e, err := newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	msgs, thPath, snapPath, err := generate(*events, 2, start, e.dir)
	if err != nil {
		return err
	}
	resetPeakRSS()
	st := &stamps{at: map[string]time.Time{}}
	actx, stopAlerts := context.WithCancel(ctx)
	defer stopAlerts()
	ar := e.readAlerts(actx, st)
	p, s := beam.NewPipelineWithRoot()
	stream.Build(s, stream.Config{Runner: "prism", InProcess: true, Project: project, Subscription: stream.DefaultSubscription,
		Thresholds: thPath, Snapshot: snapPath, AlertTopic: stream.DefaultAlertTopic,
		DeadLetterTopic: stream.DefaultDeadLetterTopic, AlertEncoding: event.EncodingJSON,
		Warehouse: filepath.Join(e.dir, "warehouse"), Shards: *shards, MaxMessages: *maxMsgs, PollInterval: 20 * time.Millisecond})
	jobDone := make(chan error, 1)
	go func() {
		_, err := stream.RunPrism(ctx, p)
		jobDone <- err
	}()
	// Warm up: wait until the job answers a marker before timing.
	warm := markers("warm", start)
	if err := e.publish(ctx, slices.Clone(warm), 0, st, false); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	if _, err := ar.waitMarkers(wctx, warm); err != nil {
		wcancel()
		return fmt.Errorf("warm-up: %w", err)
	}
	wcancel()
	ar.take("")

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if *memProfile != "" && *memAt > 0 {
		time.AfterFunc(*memAt, func() {
			if err := writeHeapProfile(*memProfile); err != nil {
				slog.Error("streambench", "err", err)
			}
		})
	}
	nEvents := len(msgs)
	end := markers("end", start.Add(time.Duration(nEvents)*time.Millisecond))
	msgs = append(msgs, end...)
	if err := e.publish(ctx, msgs, 0, st, true); err != nil {
		return err
	}
	tctx, tcancel := context.WithTimeout(ctx, 30*time.Minute)
	last, err := ar.waitMarkers(tctx, end)
	tcancel()
	if err != nil {
		return err
	}
	elapsed := last.Sub(t0)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" && *memAt == 0 {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	jobRate := float64(nEvents) / elapsed.Seconds()
	fmt.Printf("job on Prism: %d events in %v: %.0f events/s, peak RSS %.0f MiB\n",
		nEvents, elapsed.Round(time.Millisecond), jobRate, peakRSS())
	ar.take("")
	if baseRate > 0 {
		fmt.Printf("ratio job/baseline: %.2f\n", jobRate/baseRate)
	}
	if *results != "" {
		if err := appendResult(*results, nEvents, jobRate, baseRate, peakRSS(), basePeak); err != nil {
			return err
		}
	}

	if *latencyFor > 0 {
		n := int(latencyFor.Seconds() * float64(*rate))
		more, _, _, err := generate(n, latencySeed, start.Add(time.Hour), e.dir)
		if err != nil {
			return err
		}
		resetPeakRSS()
		if err := e.publish(ctx, more, *rate, st, false); err != nil {
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
		fmt.Printf("latency at %d events/s for %v: %d alerts, p50 %v, p99 %v, max %v, peak RSS %.0f MiB (%d late alerts of the throughput phase not counted)\n",
			*rate, *latencyFor, len(lat), percentile(lat, 0.5).Round(time.Millisecond),
			percentile(lat, 0.99).Round(time.Millisecond), percentile(lat, 1).Round(time.Millisecond), peakRSS(), late)
	}
	stopAlerts()
	return cancelJobs(ctx, jobDone)
}

func loadRef(ctx context.Context, thPath, snapPath string) (*ledger.Thresholds, *snapshot.File, error) {
	f, err := os.Open(thPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	th, err := ledger.ParseThresholds(f, thPath, ledger.DefaultThreshold)
	if err != nil {
		return nil, nil, err
	}
	snap, err := snapshot.Read(ctx, snapPath)
	return th, snap, err
}

// cancelJobs cancels the Prism jobs and waits for Execute to return.
func cancelJobs(ctx context.Context, done chan error) error {
	conn, err := grpc.NewClient(*jobopts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial prism: %w", err)
	}
	defer conn.Close()
	js := jobpb.NewJobServiceClient(conn)
	jobs, err := js.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return fmt.Errorf("prism GetJobs: %w", err)
	}
	for _, j := range jobs.GetJobInfo() {
		js.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()})
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	return nil
}
