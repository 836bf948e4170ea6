package pubsubio

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

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
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: sub, Topic: topic, AckDeadlineSeconds: 60}); err != nil {
			t.Fatal(err)
		}
		cases[i].opts.Subscription = sub
	}
	payload := bytes.Repeat([]byte("x"), 10_000)
	for range 5 {
		msgs := make([]*pubsubpb.PubsubMessage, 500)
		for j := range msgs {
			msgs[j] = &pubsubpb.PubsubMessage{Data: payload}
		}
		if _, err := client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: topic, Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}

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
			b, acks, _, err := f.gather(ctx, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Messages) != c.wantCount || len(acks) != c.wantCount {
				t.Errorf("gathered %d messages (%d ack ids), want %d", len(b.Messages), len(acks), c.wantCount)
			}
		})
	}
}
