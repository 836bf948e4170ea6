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
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
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

// sampleRow is one line of the CSV.
type sampleRow struct {
	elapsed    time.Duration
	rssMiB     float64
	goroutines int
	published  int64
	stored     int64
	publishing bool // taken while publishing (the summary compares those)
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
	bin := *inventoryBin
	if bin == "" {
		bin = filepath.Join(dir, "inventory")
		fmt.Fprintln(os.Stderr, "building ./cmd/inventory (minutes when the build cache is cold) ...")
		b := exec.Command("go", "build", "-o", bin, "./cmd/inventory")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return false, fmt.Errorf("build inventory: %w", err)
		}
	}
	start := time.Now().UTC().Truncate(time.Second)
	// Event times run --time_scale times faster than the clock and end at
	// about now, so that a run can reach the ledgers' 8-day dedup horizon:
	// before it, every key keeps every event id by design and memory grows
	// with the events; after it, pruning balances the growth.
	gen := synth.Config{SKUs: *skus, Locations: *locations,
		Start: start.Add(-time.Minute - time.Duration(*timeScale)*(*duration))}
	snap, th, err := writeReference(dir, gen)
	if err != nil {
		return false, err
	}
	wh := filepath.Join(dir, "warehouse")
	child, err := startUp(bin, dir, "--port", "0", "--trigger-port", "0", "--ops-port", "0", "--host", "127.0.0.1", "--no-cron",
		"--data-dir", filepath.Join(dir, "pubsub"), "--warehouse", wh, "--reports", filepath.Join(dir, "reports"),
		"--snapshot", snap, "--thresholds", th, "--debug-addr", "127.0.0.1:0", "--project", project)
	if err != nil {
		return false, err
	}
	defer child.kill()
	fmt.Fprintf(os.Stderr, "inventory up ready (pid %d, pubsub %s, %s); publishing %d events/s for %s over %d keys\n",
		child.cmd.Process.Pid, child.pubsub, child.debug, *rate, *duration, *skus**locations)

	ctx := context.Background()
	os.Setenv("PUBSUB_EMULATOR_HOST", child.pubsub)
	admin, err := broker.NewAdmin(ctx, project)
	if err != nil {
		return false, err
	}
	defer admin.Close()
	var alerts, deadLetters atomic.Int64
	drainCtx, stopDrain := context.WithCancel(ctx)
	var drains sync.WaitGroup
	for sub, n := range map[string]*atomic.Int64{names.AlertSubscription: &alerts, names.DeadLetterSubscription: &deadLetters} {
		drains.Go(func() { drain(drainCtx, admin, sub, n) })
	}
	defer func() { stopDrain(); drains.Wait() }()

	// The sampler runs from here to the end of the settling.
	csvFile, err := os.Create(*out)
	if err != nil {
		return false, err
	}
	defer csvFile.Close()
	cw := csv.NewWriter(csvFile)
	cw.Write([]string{"elapsed_s", "rss_mib", "goroutines", "published", "stored"})
	cw.Flush()
	var (
		published  atomic.Int64
		publishing atomic.Bool
		mu         sync.Mutex
		samples    []sampleRow
	)
	publishing.Store(true)
	t0 := time.Now()
	take := func() sampleRow {
		s := sampleRow{elapsed: time.Since(t0), published: published.Load(), publishing: publishing.Load()}
		s.rssMiB, _ = rssMiB(child.cmd.Process.Pid)
		s.goroutines, _ = goroutines(child.debug)
		q0 := time.Now()
		n, err := scalar(ctx, wh, "SELECT count(*) FROM adjustments")
		if err == nil {
			s.stored = n
		} else {
			// Not fatal (the next sample counts again), but never a silent 0.
			s.stored = -1
			fmt.Fprintf(os.Stderr, "%s  counting the warehouse failed: %v\n", clock(s.elapsed), err)
		}
		countTime := time.Since(q0)
		mu.Lock()
		defer mu.Unlock()
		samples = append(samples, s)
		cw.Write([]string{strconv.FormatFloat(s.elapsed.Seconds(), 'f', 1, 64), strconv.FormatFloat(s.rssMiB, 'f', 1, 64),
			strconv.Itoa(s.goroutines), strconv.FormatInt(s.published, 10), strconv.FormatInt(s.stored, 10)})
		cw.Flush()
		fmt.Fprintf(os.Stderr, "%s  rss %7.1f MiB  goroutines %5d  published %10d  stored %10d (count %s)  alerts %d  dead letters %d\n",
			clock(s.elapsed), s.rssMiB, s.goroutines, s.published, s.stored, countTime.Round(time.Millisecond), alerts.Load(), deadLetters.Load())
		return s
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(*sample)
		defer tk.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-tk.C:
				take()
			}
		}
	}()
	take()

	// Publish until --duration or Ctrl-C.
	pubCtx, stopPub := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	pubCtx, cancelPub := context.WithTimeout(pubCtx, *duration)
	failed, err := publish(pubCtx, admin, gen, &published)
	cancelPub()
	stopPub()
	publishing.Store(false)
	if err != nil {
		stopSampling()
		<-sampled
		return false, err
	}
	total := published.Load()
	fmt.Fprintf(os.Stderr, "%s  stopped publishing: %d published, %d failed; waiting up to %s for every event to be stored\n",
		clock(time.Since(t0)), total, failed, *settle)
	deadline := time.Now().Add(*settle)
	stored := int64(-1)
	for time.Now().Before(deadline) {
		if stored, err = scalar(ctx, wh, "SELECT count(DISTINCT event_id) FROM adjustments"); err == nil && stored >= total {
			break
		}
		time.Sleep(2 * time.Second)
	}
	take()
	stopSampling()
	<-sampled
	if stored < total {
		fmt.Fprintf(os.Stderr, "only %d of %d events stored after %s\n", stored, total, *settle)
	}
	stopDrain()
	drains.Wait()

	fmt.Fprintln(os.Stderr, "stopping inventory up (SIGINT) ...")
	stopErr := child.interrupt(3 * time.Minute)
	if stopErr != nil {
		fmt.Fprintln(os.Stderr, "inventory up did not stop cleanly:", stopErr)
	}

	// The checks, on the warehouse as the child left it.
	rows, err1 := scalar(ctx, wh, "SELECT count(*) FROM adjustments")
	distinct, err2 := scalar(ctx, wh, "SELECT count(DISTINCT event_id) FROM adjustments")
	twice, err3 := scalar(ctx, wh, `SELECT count(*) FROM (SELECT event_id FROM adjustments WHERE status = 'APPLIED'
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
	mu.Lock()
	defer mu.Unlock()
	summarize(os.Stderr, samples)
	fmt.Fprintf(os.Stderr, "published %d (%d failed), adjustments rows %d, distinct event ids %d, missing %d, applied twice %d, alerts read %d, dead letters %d\n",
		total, failed, rows, distinct, total-distinct, twice, alerts.Load(), deadLetters.Load())
	fmt.Fprintf(os.Stderr, "publish to stored: p50 %v ms, p99 %v ms, max %v ms; %v events over 10 s\n",
		lat[0]["p50"], lat[0]["p99"], lat[0]["max"], lat[0]["over10s"])
	fmt.Fprintf(os.Stderr, "samples in %s\n", *out)
	ok = distinct == total && twice == 0 && failed == 0 && stopErr == nil
	if ok {
		fmt.Fprintln(os.Stderr, "PASS: every event stored, none applied twice")
	} else {
		fmt.Fprintln(os.Stderr, "FAIL")
	}
	return ok, nil
}

// summarize prints RSS after warm-up against the last sample taken while
// publishing, and the goroutines of the first and that sample.
func summarize(w io.Writer, samples []sampleRow) {
	var pub []sampleRow
	for _, s := range samples {
		if s.publishing {
			pub = append(pub, s)
		}
	}
	if len(pub) < 2 {
		fmt.Fprintln(w, "too few samples for a summary")
		return
	}
	last := pub[len(pub)-1]
	// The baseline is minute 5; a run shorter than 10 minutes uses its middle.
	at := min(baselineAt, last.elapsed/2)
	base := pub[0]
	for _, s := range pub {
		if s.elapsed >= at {
			base = s
			break
		}
	}
	peak := 0.0
	for _, s := range samples {
		peak = max(peak, s.rssMiB)
	}
	fmt.Fprintf(w, "RSS %.1f MiB at %s, %.1f MiB at %s (%+.1f%%), peak %.1f MiB\n", base.rssMiB, clock(base.elapsed),
		last.rssMiB, clock(last.elapsed), 100*(last.rssMiB-base.rssMiB)/base.rssMiB, peak)
	fmt.Fprintf(w, "goroutines %d at %s, %d at %s (after warm-up at %s: %d)\n", pub[0].goroutines, clock(pub[0].elapsed),
		last.goroutines, clock(last.elapsed), clock(base.elapsed), base.goroutines)
}

func clock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// writeReference writes the snapshot (every key, as of c.Start) and the
// thresholds the child starts from.
func writeReference(dir string, c synth.Config) (snap, th string, err error) {
	snap, th = filepath.Join(dir, "state.json"), filepath.Join(dir, "thresholds.csv")
	if err := os.WriteFile(snap, snapshot.Marshal(synth.Snapshot(c)), 0o644); err != nil {
		return "", "", err
	}
	var b bytes.Buffer
	if err := synth.WriteThresholds(&b, c); err != nil {
		return "", "", err
	}
	return snap, th, os.WriteFile(th, b.Bytes(), 0o644)
}

// upChild is `inventory up` as a child process.
type upChild struct {
	cmd    *exec.Cmd
	pubsub string
	debug  string // the pprof base URL
	exited chan error
}

// startUp starts `bin up args...` in its own process group (a Ctrl-C at the
// terminal reaches only soak, which stops it in order), logging to
// dir/up.log, and waits until it says it is ready.
func startUp(bin, dir string, args ...string) (*upChild, error) {
	logf, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"up"}, args...)...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start inventory up: %w", err)
	}
	c := &upChild{cmd: cmd, exited: make(chan error, 1)}
	ready := make(chan struct{})
	go func(ready chan struct{}) {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			fmt.Fprintln(logf, l)
			if ready == nil {
				continue
			}
			switch f := strings.Fields(l); {
			case len(f) > 1 && f[0] == "pubsub":
				c.pubsub = f[1]
			case len(f) > 1 && f[0] == "debug":
				c.debug = f[1]
			case l == "ready; Ctrl-C stops":
				close(ready)
				ready = nil
			}
		}
		c.exited <- cmd.Wait()
		logf.Close()
	}(ready)
	select {
	case <-ready:
	case err := <-c.exited:
		return nil, fmt.Errorf("inventory up exited before it was ready (%v); see %s", err, logf.Name())
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("inventory up not ready in 5 minutes; see %s", logf.Name())
	}
	if c.pubsub == "" || c.debug == "" {
		return nil, fmt.Errorf("inventory up did not print its pubsub and debug addresses; see %s", logf.Name())
	}
	return c, nil
}

// interrupt sends SIGINT and waits for a clean exit.
func (c *upChild) interrupt(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	select {
	case err := <-c.exited:
		c.exited <- err
		return err
	case <-time.After(timeout):
		c.cmd.Process.Kill()
		return fmt.Errorf("not stopped %s after SIGINT: killed", timeout)
	}
}

// kill ends the child if it still runs.
func (c *upChild) kill() {
	select {
	case err := <-c.exited:
		c.exited <- err
	default:
		c.cmd.Process.Kill()
	}
}

// rssMiB reads VmRSS of pid.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// goroutines reads the total of the child's goroutine profile.
func goroutines(base string) (int, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile starts with %q", line)
	}
	return strconv.Atoi(n)
}

// scalar runs a one-value query on the warehouse.
func scalar(ctx context.Context, wh, sql string) (int64, error) {
	rows, err := warehouse.QueryRows(ctx, wh, sql)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("%s: %d rows", sql, len(rows))
	}
	for _, v := range rows[0] {
		if n, ok := v.(int64); ok {
			return n, nil
		}
		return 0, fmt.Errorf("%s: %T", sql, v)
	}
	return 0, nil
}

// drain receives and acks sub, counting, until ctx ends: the consumer of
// the alerts and of the dead letters, without whom their backlogs would
// grow in the child's memory.
func drain(ctx context.Context, admin *broker.Admin, sub string, n *atomic.Int64) {
	err := admin.Client.Subscriber(sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		n.Add(1)
		m.Ack()
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "drain %s: %v\n", sub, err)
	}
}

// chunkSeconds is the length of the stream generated at a time.
const chunkSeconds = 10

// publish publishes generated adjustments at --rate until ctx ends, and
// waits for every result. published counts the events the server took.
func publish(ctx context.Context, admin *broker.Admin, gen synth.Config, published *atomic.Int64) (failed int64, err error) {
	pub := admin.Client.Publisher(names.Topic)
	pub.PublishSettings.CountThreshold = 500
	pub.PublishSettings.DelayThreshold = 5 * time.Millisecond
	chunks := make(chan []*pubsub.Message, 2)
	genErr := make(chan error, 1)
	// Only the chunks of --duration: one more would have event times past
	// now, and at --time_scale 4000 more than the day ahead that
	// validation allows.
	n := int((*duration + chunkSeconds*time.Second - 1) / (chunkSeconds * time.Second))
	go func() {
		defer close(chunks)
		for i := range n {
			msgs, err := chunk(gen, i)
			if err != nil {
				genErr <- err
				return
			}
			select {
			case chunks <- msgs:
			case <-ctx.Done():
				return
			}
		}
	}()
	results := make(chan *pubsub.PublishResult, 100_000)
	var nfailed atomic.Int64
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for r := range results {
			if _, err := r.Get(context.Background()); err != nil {
				if nfailed.Add(1) == 1 {
					fmt.Fprintln(os.Stderr, "publish failed:", err)
				}
				continue
			}
			published.Add(1)
		}
	}()
	start := time.Now()
	sent := 0
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	var pending []*pubsub.Message
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tk.C:
		}
		due := int(time.Since(start).Seconds() * float64(*rate))
		for sent < due {
			if len(pending) == 0 {
				var ok bool
				if pending, ok = <-chunks; !ok {
					break loop
				}
			}
			results <- pub.Publish(context.WithoutCancel(ctx), pending[0])
			pending = pending[1:]
			sent++
		}
	}
	pub.Stop()
	close(results)
	<-collected
	select {
	case err := <-genErr:
		return nfailed.Load(), err
	default:
	}
	return nfailed.Load(), nil
}

// chunk generates the i-th chunkSeconds of the stream: valid adjustments
// over every key, event times in that chunk's seconds from gen.Start, event
// ids soak-<i>-<n>, JSON with the attributes `inventory publish` sets.
func chunk(gen synth.Config, i int) ([]*pubsub.Message, error) {
	c := gen
	c.Events = *rate * chunkSeconds
	c.Seed = uint64(i) + 1
	c.Start = gen.Start.Add(time.Minute + time.Duration(i**timeScale)*chunkSeconds*time.Second)
	c.Span = time.Duration(*timeScale) * chunkSeconds * time.Second
	var buf bytes.Buffer
	if err := synth.Generate(&buf, c); err != nil {
		return nil, err
	}
	cr, err := event.NewCSVReader(&buf, "synth")
	if err != nil {
		return nil, err
	}
	out := make([]*pubsub.Message, 0, c.Events)
	for n := 0; ; n++ {
		var a event.Adjustment
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		a.EventID = fmt.Sprintf("soak-%d-%d", i, n)
		if err := event.Validate(&a, time.Now()); err != nil {
			return nil, fmt.Errorf("generate: %s: %w", a.EventID, err)
		}
		data, err := event.MarshalJSON(&a)
		if err != nil {
			return nil, err
		}
		out = append(out, &pubsub.Message{Data: data, Attributes: map[string]string{
			event.AttrEventTime: event.FormatTime(a.EventTime), event.AttrEventID: a.EventID, "source": a.Source}})
	}
}
