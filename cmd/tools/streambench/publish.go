package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/inventory-events/inventory/cmd/tools/internal/benchkit"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

type env struct {
	stopEmu func()
	admin   *broker.Admin
	pub     *pubsub.Publisher
	dir     string
}

func newEnv(ctx context.Context) (*env, error) {
	addr, stopEmu, err := benchkit.StartEmulator(*emuInProc)
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
// once Pub/Sub has it, so that a million payloads do not weigh on
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

// generated is a stream of valid adjustments as JSON payloads, with the
// reference data it starts from.
type generated struct {
	msgs       []payload
	thresholds string // the thresholds file
	snapshot   string // the snapshot file
	keys       int    // the keys the events touch
}

// generate returns n valid adjustments as JSON payloads, with thresholds
// and a snapshot written to dir. Event times start at start.
func generate(n int, seed uint64, start time.Time, dir string) (generated, error) {
	cfg := synth.Config{Events: n, SKUs: *skus, Locations: *locations, Seed: seed, Start: start, Span: time.Duration(n) * time.Millisecond}
	cfg.Defaults()
	var buf bytes.Buffer
	if err := synth.Generate(&buf, cfg); err != nil {
		return generated{}, err
	}
	cr, err := event.NewCSVReader(&buf, "synth")
	if err != nil {
		return generated{}, err
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
			return generated{}, err
		}
		out = append(out, payload{id: a.EventID, data: data})
	}
	th := filepath.Join(dir, "thresholds.csv")
	var tb bytes.Buffer
	if err := synth.WriteThresholds(&tb, cfg); err != nil {
		return generated{}, err
	}
	if err := os.WriteFile(th, tb.Bytes(), 0o644); err != nil {
		return generated{}, err
	}
	snap := filepath.Join(dir, "state.json")
	if err := os.WriteFile(snap, snapshot.Marshal(synth.Snapshot(cfg)), 0o644); err != nil {
		return generated{}, err
	}
	return generated{msgs: out, thresholds: th, snapshot: snap, keys: len(keys)}, nil
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
