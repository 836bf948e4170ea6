package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inventory-events/inventory/cmd/tools/internal/benchkit"
	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// sampleRow is one line of the CSV.
type sampleRow struct {
	elapsed    time.Duration
	rssMiB     float64
	goroutines int
	published  int64
	stored     int64
	publishing bool // taken while publishing (the summary compares those)
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

// sampler records a sample every --sample, from its start to its stop, as a
// line of the CSV --out and a line on stderr.
type sampler struct {
	ctx   context.Context
	child *upChild
	wh    string
	cons  *consumers
	t0    time.Time

	published  atomic.Int64 // events the server took
	publishing atomic.Bool

	mu      sync.Mutex
	samples []sampleRow
	file    *os.File
	cw      *csv.Writer

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// startSampler creates --out, takes a first sample, and samples every
// --sample until stop.
func startSampler(ctx context.Context, child *upChild, wh string, cons *consumers) (*sampler, error) {
	f, err := os.Create(*out)
	if err != nil {
		return nil, err
	}
	s := &sampler{ctx: ctx, child: child, wh: wh, cons: cons, file: f, cw: csv.NewWriter(f), done: make(chan struct{})}
	s.cw.Write([]string{"elapsed_s", "rss_mib", "goroutines", "published", "stored"})
	s.cw.Flush()
	s.publishing.Store(true)
	s.t0 = time.Now()
	var tickCtx context.Context
	tickCtx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		console.Every(tickCtx, *sample, func() { s.take() })
	}()
	s.take()
	return s, nil
}

// take records one sample.
func (s *sampler) take() sampleRow {
	r := sampleRow{elapsed: time.Since(s.t0), published: s.published.Load(), publishing: s.publishing.Load()}
	r.rssMiB, _ = benchkit.RSS(s.child.cmd.Process.Pid)
	r.goroutines, _ = goroutines(s.child.debug)
	q0 := time.Now()
	n, err := warehouse.QueryInt(s.ctx, s.wh, "SELECT count(*) FROM adjustments")
	if err == nil {
		r.stored = n
	} else {
		// Not fatal (the next sample counts again), but never a silent 0.
		r.stored = -1
		fmt.Fprintf(os.Stderr, "%s  counting the warehouse failed: %v\n", clock(r.elapsed), err)
	}
	countTime := time.Since(q0)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, r)
	s.cw.Write([]string{strconv.FormatFloat(r.elapsed.Seconds(), 'f', 1, 64), strconv.FormatFloat(r.rssMiB, 'f', 1, 64),
		strconv.Itoa(r.goroutines), strconv.FormatInt(r.published, 10), strconv.FormatInt(r.stored, 10)})
	s.cw.Flush()
	fmt.Fprintf(os.Stderr, "%s  rss %7.1f MiB  goroutines %5d  published %10d  stored %10d (count %s)  alerts %d  dead letters %d\n",
		clock(r.elapsed), r.rssMiB, r.goroutines, r.published, r.stored, countTime.Round(time.Millisecond), s.cons.alerts.Load(), s.cons.deadLetters.Load())
	return r
}

// stop ends the sampling and waits for a sample in progress.
func (s *sampler) stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
	})
}

// close stops the sampling and closes --out.
func (s *sampler) close() {
	s.stop()
	s.file.Close()
}

// all returns the samples taken.
func (s *sampler) all() []sampleRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}
