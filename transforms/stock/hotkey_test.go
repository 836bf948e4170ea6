package stock

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// hotKeyBatches returns n events over keys keys, in batches of perBatch
// messages, their event times spread evenly over span and ending an hour
// before now, all inside the dedup horizon: almost every one is applied and
// keeps its id. Every countEvery-th event is a count ("few counts").
func hotKeyBatches(keys, n, perBatch int, span time.Duration) []pubsubio.Batch {
	const countEvery = 10_000
	end := clock.Now().Add(-time.Hour).UTC()
	start := end.Add(-span)
	step := span / time.Duration(n)
	var out []pubsubio.Batch
	var b pubsubio.Batch
	for i := range n {
		k := i % keys
		a := event.Adjustment{EventID: fmt.Sprintf("hot-%08d", i), SKU: fmt.Sprintf("SKU-%05d", k/10), LocationID: fmt.Sprintf("STORE-%03d", k%10),
			Reason: event.Sold, Quantity: -1, EventTime: start.Add(time.Duration(i) * step).UnixMicro(), Source: "bench"}
		switch {
		case i%countEvery == countEvery-1:
			a.Reason, a.Quantity = event.Counted, 500
		case i%2 == 1:
			a.Reason, a.Quantity = event.Received, 1
		}
		data, err := event.MarshalJSON(&a)
		if err != nil {
			panic(err)
		}
		b.Messages = append(b.Messages, pubsubio.Message{ID: a.EventID, Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingJSON}})
		if len(b.Messages) == perBatch {
			out = append(out, b)
			b = pubsubio.Batch{}
		}
	}
	if len(b.Messages) > 0 {
		out = append(out, b)
	}
	return out
}

// stockRun is what one run of the stock stage did.
type stockRun struct {
	counts        commit.Counts
	written, read int64 // bytes of Beam state
}

// runStock runs DecodeEvents and the stock stage, in the shard or the
// per-key layout, on Prism over batches, and returns its counters.
func runStock(tb testing.TB, batches []pubsubio.Batch, perKey bool) stockRun {
	tb.Helper()
	p, s := beam.NewPipelineWithRoot()
	dec := DecodeEvents(s, beam.CreateList(s, batches), 4, OriginPubSub)
	ref := beam.Create(s, newReference(ledger.NewThresholds(10), 0, nil, nil))
	if perKey {
		ApplyPerKey(s, KeyEvents(s, dec.Events), ref, 0)
	} else {
		Apply(s, dec.Events, ref, 0)
	}
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		tb.Fatalf("stock stage: %v", err)
	}
	r := stockRun{counts: commit.CountsOf(pr)}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() != commit.MetricNamespace {
			continue
		}
		switch c.Name() {
		case metricStateBytesWritten:
			r.written += c.Result()
		case metricStateBytesRead:
			r.read += c.Result()
		}
	}
	return r
}

func layoutName(perKey bool) string {
	if perKey {
		return "per-key"
	}
	return "shards"
}

// TestHotKeyStateIO checks that the state a key's event writes does not
// grow with the key's history, in both layouts: one key taking 8x the
// events (and so 8x the ids in the horizon) writes about the same bytes of
// state per event. Rewriting a key's whole ledger per element would make
// the longer run write about 8x per event. The bound is 2x, not 1x: a new
// base is written each time the change records since the last one outgrow
// it, so the bytes per event depend on how far the run ends past its last
// base (the amortized cost is within twice the change records).
func TestHotKeyStateIO(t *testing.T) {
	slowtest.Skip(t, "Prism jobs")
	withoutPrismSplits(t)
	const n = 2_000
	for _, perKey := range []bool{false, true} {
		t.Run(layoutName(perKey), func(t *testing.T) {
			var perEvent [2]float64
			for i, events := range []int{n, 8 * n} {
				r := runStock(t, hotKeyBatches(1, events, 10, 7*24*time.Hour), perKey)
				if r.counts.Received != int64(events) || r.counts.Applied != int64(events) || !r.counts.Balanced() {
					t.Fatalf("%d events: counters %+v, want all %d applied", events, r.counts, events)
				}
				if r.written == 0 {
					t.Fatalf("%d events: no state written (counter %s missing?)", events, metricStateBytesWritten)
				}
				perEvent[i] = float64(r.written) / float64(events)
				t.Logf("%s, %d events on one key: %.0f B of state written, %.0f B read per event", layoutName(perKey), events, perEvent[i], float64(r.read)/float64(events))
			}
			if perEvent[1] > 2*perEvent[0] {
				t.Errorf("state written per event grew with the key's history: %.0f B at %d events, %.0f B at %d", perEvent[0], n, perEvent[1], 8*n)
			}
		})
	}
}

var (
	hotKeyEvents  = flag.Int("hotkey_events", 100_000, "events of BenchmarkHotKey")
	hotKeyResults = flag.String("hotkey_results", "", "CSV file BenchmarkHotKey appends its rows to (docs/img/hotkey-results.csv)")
)

// cpuTime returns the CPU time (user + system) this process used so far:
// the test binary runs Prism and its workers in process, so a delta is the
// job's CPU, the runner's included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// appendHotKeyResult appends one row to the -hotkey_results CSV, with a
// header when the file is new.
func appendHotKeyResult(tb testing.TB, row []string) {
	if *hotKeyResults == "" {
		return
	}
	_, err := os.Stat(*hotKeyResults)
	isNew := os.IsNotExist(err)
	f, err := os.OpenFile(*hotKeyResults, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	w := csv.NewWriter(f)
	if isNew {
		w.Write([]string{"layout", "keys", "events", "events_per_s", "cpu_us_per_event", "state_bytes_written_per_event", "state_bytes_read_per_event"})
	}
	w.Write(row)
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkHotKey runs the stock stage on Prism in both layouts over
// 100,000 events spread over 7 days of event time (-hotkey_events): on one
// key (hot) and on 1,000 keys (cold). The shard layout gets batches of 100
// messages, as the Prism job pulls them; the per-key layout one message per
// element, as on Dataflow. It reports events/s and the bytes of state
// written and read per event; the goal is hot >= 0.5 of cold in each layout
// (docs/benchmarks.md, `make bench-stream-hotkey`).
func BenchmarkHotKey(b *testing.B) {
	withoutPrismSplits(b)
	n := *hotKeyEvents
	for _, perKey := range []bool{false, true} {
		perBatch := 100
		if perKey {
			perBatch = 1
		}
		for _, keys := range []int{1, 1000} {
			batches := hotKeyBatches(keys, n, perBatch, 7*24*time.Hour)
			name := fmt.Sprintf("%s/keys=%d", layoutName(perKey), keys)
			b.Run(name, func(b *testing.B) {
				var r stockRun
				start, cpu0 := time.Now(), cpuTime()
				for b.Loop() {
					r = runStock(b, batches, perKey)
				}
				if r.counts.Received != int64(n) || !r.counts.Balanced() {
					b.Fatalf("counters %+v, want %d received, balanced", r.counts, n)
				}
				total := float64(n) * float64(b.N)
				rate := total / time.Since(start).Seconds()
				cpuPer := float64((cpuTime() - cpu0).Microseconds()) / total
				b.ReportMetric(rate, "events/s")
				b.ReportMetric(cpuPer, "cpu-us/event")
				b.ReportMetric(float64(r.written)/float64(n), "state-B-written/event")
				b.ReportMetric(float64(r.read)/float64(n), "state-B-read/event")
				appendHotKeyResult(b, []string{layoutName(perKey), strconv.Itoa(keys), strconv.Itoa(n), strconv.FormatFloat(rate, 'f', 0, 64),
					strconv.FormatFloat(cpuPer, 'f', 1, 64), strconv.FormatFloat(float64(r.written)/float64(n), 'f', 1, 64),
					strconv.FormatFloat(float64(r.read)/float64(n), 'f', 1, 64)})
			})
		}
	}
}
