package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

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
