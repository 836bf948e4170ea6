package pubsubio

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
)

// clock is a settable time for the emulator and the keeper.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestLeaseKeeper checks, against the local Pub/Sub over gRPC with a
// settable clock, that a held message is not delivered again while its
// lease is renewed, is delivered again one deadline after it is released
// (not acked) or after the max extension, and that an acked message is
// gone.
func TestLeaseKeeper(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	const project = "lease-test"
	client := localPubSub(t, pubsubemu.Options{Now: clk.now}, project)
	ctx := context.Background()
	topic, sub := TopicPath(project, "leases"), SubscriptionPath(project, "leases-sub")
	createTopicSub(t, client, topic, sub, 10)
	publish := func(data string) {
		t.Helper()
		if _, err := client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: topic,
			Messages: []*pubsubpb.PubsubMessage{{Data: []byte(data)}}}); err != nil {
			t.Fatal(err)
		}
	}
	// pull returns the data and ack ids of what is deliverable now.
	pull := func() (data, acks []string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		resp, err := client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 10})
		if err != nil && pctx.Err() == nil {
			t.Fatal(err)
		}
		for _, rm := range resp.GetReceivedMessages() {
			data = append(data, string(rm.GetMessage().GetData()))
			acks = append(acks, rm.GetAckId())
		}
		return data, acks
	}

	fl := NewFlight()
	defer fl.Close()
	k := newLeaseKeeper(fl, client, sub, 10*time.Second, 45*time.Second)
	defer k.close()
	k.now = clk.now
	// tick is a tick of the keeper after advancing the clock by d; renew
	// is one while the source runs.
	tick := func(d time.Duration) {
		t.Helper()
		clk.advance(d)
		if err := k.renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	renew := func(d time.Duration) {
		t.Helper()
		clk.advance(d)
		k.touch()
		tick(0)
	}

	publish("a")
	publish("b")
	data, acks := pull()
	if len(data) != 2 {
		t.Fatalf("first pull got %q, want a and b", data)
	}
	k.hold(acks)
	// Renewed every 6 s for 24 s, well past the 10 s deadline: not
	// delivered again.
	for range 4 {
		renew(6 * time.Second)
		if got, _ := pull(); len(got) != 0 {
			t.Fatalf("held messages delivered again: %q", got)
		}
	}
	// One is acked and released, as commit.Write does; the other only
	// released (its ack failed, say): one deadline later only it is back.
	if err := client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: acks[:1]}); err != nil {
		t.Fatal(err)
	}
	fl.Stored(acks)
	if n := k.holding(); n != 0 {
		t.Fatalf("keeper holds %d leases after release, want 0", n)
	}
	renew(6 * time.Second)
	if got, _ := pull(); len(got) != 0 {
		t.Fatalf("released message delivered before its deadline: %q", got)
	}
	clk.advance(5 * time.Second)
	data, acks = pull()
	if len(data) != 1 || data[0] != "b" {
		t.Fatalf("after the deadline got %q, want only the unacked b", data)
	}

	// Held past the max extension (45 s): the keeper lets it go.
	k.hold(acks)
	for range 7 {
		renew(6 * time.Second)
		if got, _ := pull(); len(got) != 0 {
			t.Fatalf("held message delivered again at %v: %q", clk.now(), got)
		}
	}
	renew(6 * time.Second) // 48 s held
	if n := k.holding(); n != 0 {
		t.Fatalf("keeper holds %d leases past the max extension, want 0", n)
	}
	clk.advance(11 * time.Second)
	data, acks = pull()
	if len(data) != 1 || data[0] != "b" {
		t.Fatalf("after the max extension got %q, want b delivered again", data)
	}

	// The source stops (its job was cancelled): two deadlines later the
	// keeper lets the lease lapse, and the message comes back.
	k.hold(acks)
	renew(0)
	tick(9 * time.Second)
	tick(9 * time.Second)
	if got, _ := pull(); len(got) != 0 {
		t.Fatalf("held message delivered again while the source had been idle for 18 s: %q", got)
	}
	tick(3 * time.Second) // idle 21 s: more than two deadlines
	if n := k.holding(); n != 0 {
		t.Fatalf("keeper of a stopped source holds %d leases, want 0", n)
	}
	clk.advance(10 * time.Second)
	if got, _ := pull(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after the source stopped got %q, want b delivered again", got)
	}
}
