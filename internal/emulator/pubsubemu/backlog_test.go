package pubsubemu

import (
	"bytes"
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"

	"github.com/inventory-events/inventory/internal/event"
)

// nineMB is a payload Pub/Sub takes (up to 10 MB) that base64 would put
// past it.
var nineMB = bytes.Repeat([]byte("9"), 9_000_000)

// TestLimitsAgreeWithTheContract: the limits the local Pub/Sub enforces are
// the ones the product cuts its dead letters to.
func TestLimitsAgreeWithTheContract(t *testing.T) {
	if maxPublishBytes != event.PubSubMaxMessageBytes || maxAttributes != event.PubSubMaxAttributes ||
		maxAttrKeyBytes != event.PubSubMaxAttrKeyBytes || maxAttrValueBytes != event.PubSubMaxAttrValueBytes {
		t.Errorf("emulator limits %v/%d/%d/%d, event's %d/%d/%d/%d", maxPublishBytes, maxAttributes, maxAttrKeyBytes, maxAttrValueBytes,
			event.PubSubMaxMessageBytes, event.PubSubMaxAttributes, event.PubSubMaxAttrKeyBytes, event.PubSubMaxAttrValueBytes)
	}
}

// TestNineMegabyteMessage: a 9 MB message goes through the official client
// over gRPC, as with Pub/Sub (10 MB per message): published, then delivered
// whole by Pull and by StreamingPull.
func TestNineMegabyteMessage(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("big")})
	mustSub(t, c, &pb.Subscription{Name: subName("big-pull"), Topic: topicName("big")})
	mustSub(t, c, &pb.Subscription{Name: subName("big-stream"), Topic: topicName("big")})
	publish(t, c, topicName("big"), &pubsub.Message{Data: nineMB, Attributes: map[string]string{"k": "v"}})

	got := pullUntil(t, c, subName("big-pull"), 1, 10*time.Second)
	if !bytes.Equal(got[0].GetMessage().GetData(), nineMB) {
		t.Errorf("Pull: %d bytes, want the 9,000,000 published", len(got[0].GetMessage().GetData()))
	}
	ack(t, c, subName("big-pull"), got[0].GetAckId())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var n int
	err := c.Subscriber(subName("big-stream")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		n = len(m.Data)
		m.Ack()
		cancel()
	})
	if err != nil || n != len(nineMB) {
		t.Errorf("StreamingPull: %d bytes (%v), want 9,000,000", n, err)
	}
}

// publishOnce publishes msgs in one request, without the client's retries.
func publishOnce(ctx context.Context, c *pubsub.Client, topic string, msgs ...*pb.PubsubMessage) error {
	_, err := c.TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: topic, Messages: msgs},
		gax.WithRetry(func() gax.Retryer { return nil }))
	return err
}

// TestTopicBacklogCap: past Options.MaxTopicBytes of messages retained by a
// topic's subscriptions, Publish is refused with RESOURCE_EXHAUSTED; other
// topics, and topics without subscriptions (which retain nothing), are not
// affected; acking makes room again, and the official publisher, which
// retries RESOURCE_EXHAUSTED, then gets through.
func TestTopicBacklogCap(t *testing.T) {
	b := startEmu(t, Options{MaxTopicBytes: 20_000_000})
	c := newClient(t, b.addr)
	for _, id := range []string{"capped", "other"} {
		mustTopic(t, c, &pb.Topic{Name: topicName(id)})
		mustSub(t, c, &pb.Subscription{Name: subName(id + "-sub"), Topic: topicName(id)})
	}
	mustTopic(t, c, &pb.Topic{Name: topicName("unsubscribed")})
	ctx := testCtx(t)
	big := &pb.PubsubMessage{Data: nineMB}
	for i := range 2 {
		if err := publishOnce(ctx, c, topicName("capped"), big); err != nil {
			t.Fatalf("publish %d of 9 MB under the cap: %v", i+1, err)
		}
	}
	err := publishOnce(ctx, c, topicName("capped"), big)
	wantCode(t, "a third 9 MB message past a 20 MB cap", err, codes.ResourceExhausted)
	if err := publishOnce(ctx, c, topicName("other"), big); err != nil {
		t.Errorf("another topic: %v", err)
	}
	for i := range 3 {
		if err := publishOnce(ctx, c, topicName("unsubscribed"), big); err != nil {
			t.Errorf("publish %d to a topic without subscriptions: %v", i+1, err)
		}
	}

	// The official publisher retries until the backlog is acked.
	p := c.Publisher(topicName("capped"))
	defer p.Stop()
	res := p.Publish(ctx, &pubsub.Message{Data: nineMB})
	time.Sleep(300 * time.Millisecond) // let it be refused at least once
	select {
	case <-res.Ready():
		_, err := res.Get(ctx)
		t.Fatalf("publish past the cap ended before the backlog was acked: %v", err)
	default:
	}
	ack(t, c, subName("capped-sub"), ackIDs(pullUntil(t, c, subName("capped-sub"), 2, 10*time.Second))...)
	if _, err := res.Get(ctx); err != nil {
		t.Errorf("publish after the backlog was acked: %v", err)
	}
}

// TestTopicBacklogCapAfterRestart: with a data dir, what the subscriptions
// retain is counted again when the emulator restarts.
func TestTopicBacklogCapAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Start("127.0.0.1:0", Options{DataDir: dir, MaxTopicBytes: 20_000_000})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Addr())
	mustTopic(t, c, &pb.Topic{Name: topicName("capped")})
	mustSub(t, c, &pb.Subscription{Name: subName("capped-sub"), Topic: topicName("capped")})
	ctx := testCtx(t)
	for range 2 {
		if err := publishOnce(ctx, c, topicName("capped"), &pb.PubsubMessage{Data: nineMB}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b := startEmu(t, Options{DataDir: dir, MaxTopicBytes: 20_000_000})
	c = newClient(t, b.addr)
	err = publishOnce(testCtx(t), c, topicName("capped"), &pb.PubsubMessage{Data: nineMB})
	wantCode(t, "a third 9 MB message after a restart", err, codes.ResourceExhausted)
}
