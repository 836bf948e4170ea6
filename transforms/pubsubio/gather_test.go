package pubsubio

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
)

// TestGatherBatch checks, against the local Pub/Sub over gRPC, how the
// source gathers a batch while the job is busy (a message emitted before
// is not yet stored): from several pulls (one Pull answers at most 1,000)
// up to MaxMessages, and no further once the batch holds MaxBatchBytes.
// Each case reads its own subscription of one topic holding 2,500
// messages of 10 KB (25 MB).
func TestGatherBatch(t *testing.T) {
	const project = "gather-test"
	client := localPubSub(t, pubsubemu.Options{}, project)
	ctx := context.Background()
	topic := TopicPath(project, "events")
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		opts      PullOptions
		limit     int
		wantCount int
	}{
		// The default byte bound (16 MiB) stops the batch after the
		// pull that crosses it: two pulls, 2,000 messages, 20 MB.
		{"defaults", PullOptions{}, DefaultMaxMessages, 2000},
		{"max messages", PullOptions{MaxMessages: 1500}, 1500, 1500},
		{"max bytes", PullOptions{MaxBatchBytes: 4 << 20}, DefaultMaxMessages, 1000},
		{"max bytes above the topic", PullOptions{MaxBatchBytes: 64 << 20}, DefaultMaxMessages, 2500},
	}
	for i := range cases {
		sub := SubscriptionPath(project, fmt.Sprintf("sub-%d", i))
		createSub(t, client, topic, sub, 60)
		cases[i].opts.Subscription = sub
	}
	publishCopies(t, client, topic, bytes.Repeat([]byte("x"), 10_000), 5, 500)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fl := NewFlight()
			defer fl.Close()
			fl.emitted(&Batch{Messages: []Message{{AckID: "emitted-before"}}}) // the job is busy
			f := &pullFn{PullOptions: c.opts}
			f.Project, f.Flight = project, fl.ID()
			if err := f.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			defer f.Teardown()
			b, acks, _, err := f.gather(ctx, c.limit, f.MaxBatchBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Messages) != c.wantCount || len(acks) != c.wantCount {
				t.Errorf("gathered %d messages (%d ack ids), want %d", len(b.Messages), len(acks), c.wantCount)
			}
		})
	}
}

// TestFlowControlBytes checks, against the local Pub/Sub over gRPC, that
// the source stops pulling once what it emitted and the job has not
// stored holds MaxOutstandingBytes less than half of it, however few the
// messages, and pulls again once they are stored. The topic holds 30
// messages of 1 MB; one Pull answers at most 10 MiB of them.
func TestFlowControlBytes(t *testing.T) {
	const project = "flow-test"
	client := localPubSub(t, pubsubemu.Options{}, project)
	ctx := context.Background()
	topic, sub := TopicPath(project, "events"), SubscriptionPath(project, "events")
	createTopicSub(t, client, topic, sub, 60)
	payload := bytes.Repeat([]byte("x"), 1_000_000)
	publishCopies(t, client, topic, payload, 5, 6)

	fl := NewFlight()
	defer fl.Close()
	f := &pullFn{PullOptions: PullOptions{Project: project, Subscription: sub, Flight: fl.ID(),
		MaxOutstandingBytes: 12 << 20}}
	if err := f.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	// step runs one ProcessElement, as Prism does for each bundle of the
	// source, and returns the batch it emitted, if any.
	step := func() *Batch {
		t.Helper()
		var got *Batch
		rt := sdf.NewLockRTracker(&pullTracker{})
		if _, err := f.ProcessElement(ctx, &sdf.ManualWatermarkEstimator{}, rt, nil, func(_ beam.EventTime, b Batch) {
			got = &b
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}

	first := step()
	if first == nil || len(first.Messages) != 10 {
		t.Fatalf("the first bundle emitted %v, want one Pull's answer of 10 messages", first)
	}
	if n, size := fl.outstanding(); n != 10 || size != 10*len(payload) {
		t.Fatalf("outstanding after the first batch: %d messages, %d bytes; want 10, %d", n, size, 10*len(payload))
	}
	// 10 MB of 12 MiB are in flight: far fewer messages than MaxOutstanding,
	// but less room than half the byte bound. The source must not pull.
	for i := range 3 {
		if b := step(); b != nil {
			t.Fatalf("bundle %d emitted %d messages with %d bytes outstanding of %d", i+2, len(b.Messages), 10*len(payload), 12<<20)
		}
	}
	var acks []string
	for _, m := range first.Messages {
		acks = append(acks, m.AckID)
	}
	fl.Stored(acks)
	if n, size := fl.outstanding(); n != 0 || size != 0 {
		t.Fatalf("outstanding once stored: %d messages, %d bytes; want none", n, size)
	}
	if b := step(); b == nil || len(b.Messages) != 10 {
		t.Fatalf("once the first batch was stored the source emitted %v, want the next 10 messages", b)
	}
}
