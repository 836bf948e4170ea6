package pubsubemu

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const project = "projects/test-proj"

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// backend is a server the scenario suite runs against.
type backend struct {
	name string
	addr string
	emu  *Server // nil for pstest
}

func startEmu(t *testing.T, opts Options) *backend {
	t.Helper()
	s, err := Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &backend{name: "emulator", addr: s.Addr(), emu: s}
}

func startPstest(t *testing.T) *backend {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	return &backend{name: "pstest", addr: srv.Addr}
}

// forEachBackend runs a scenario against the emulator and against pstest.
func forEachBackend(t *testing.T, f func(t *testing.T, b *backend)) {
	t.Run("emulator", func(t *testing.T) { f(t, startEmu(t, Options{})) })
	t.Run("pstest", func(t *testing.T) { f(t, startPstest(t)) })
}

func clientOpts(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled(),
	}
}

func newClient(t *testing.T, addr string) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), "test-proj", clientOpts(addr)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newSchemaClient(t *testing.T, addr string) *vkit.SchemaClient {
	t.Helper()
	c, err := vkit.NewSchemaClient(context.Background(), clientOpts(addr)...)
	if err != nil {
		t.Fatalf("NewSchemaClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func topicName(id string) string { return project + "/topics/" + id }
func subName(id string) string   { return project + "/subscriptions/" + id }

func mustTopic(t *testing.T, c *pubsub.Client, tp *pb.Topic) {
	t.Helper()
	if _, err := c.TopicAdminClient.CreateTopic(testCtx(t), tp); err != nil {
		t.Fatalf("CreateTopic %s: %v", tp.Name, err)
	}
}

func mustSub(t *testing.T, c *pubsub.Client, sp *pb.Subscription) {
	t.Helper()
	if _, err := c.SubscriptionAdminClient.CreateSubscription(testCtx(t), sp); err != nil {
		t.Fatalf("CreateSubscription %s: %v", sp.Name, err)
	}
}

// publish publishes through the official Publisher and waits for ids.
func publish(t *testing.T, c *pubsub.Client, topic string, msgs ...*pubsub.Message) []string {
	t.Helper()
	p := c.Publisher(topic)
	if msgs != nil && msgs[0].OrderingKey != "" {
		p.EnableMessageOrdering = true
	}
	defer p.Stop()
	ctx := testCtx(t)
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = p.Publish(ctx, m)
	}
	ids := make([]string, len(msgs))
	for i, r := range results {
		id, err := r.Get(ctx)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		ids[i] = id
	}
	return ids
}

// pull pulls once, returning immediately.
func pull(t *testing.T, c *pubsub.Client, sub string, max int32) []*pb.ReceivedMessage {
	t.Helper()
	resp, err := c.SubscriptionAdminClient.Pull(testCtx(t), &pb.PullRequest{Subscription: sub, MaxMessages: max, ReturnImmediately: true})
	if err != nil {
		t.Fatalf("Pull %s: %v", sub, err)
	}
	return resp.ReceivedMessages
}

// pullUntil pulls until it has n messages or the deadline passes.
func pullUntil(t *testing.T, c *pubsub.Client, sub string, n int, timeout time.Duration) []*pb.ReceivedMessage {
	t.Helper()
	var got []*pb.ReceivedMessage
	deadline := time.Now().Add(timeout)
	for len(got) < n && time.Now().Before(deadline) {
		resp, err := c.SubscriptionAdminClient.Pull(testCtx(t), &pb.PullRequest{Subscription: sub, MaxMessages: int32(n - len(got))})
		if err != nil {
			t.Fatalf("Pull %s: %v", sub, err)
		}
		got = append(got, resp.ReceivedMessages...)
	}
	if len(got) < n {
		t.Fatalf("pulled %d of %d messages from %s within %v", len(got), n, sub, timeout)
	}
	return got
}

func ack(t *testing.T, c *pubsub.Client, sub string, ids ...string) {
	t.Helper()
	if err := c.SubscriptionAdminClient.Acknowledge(testCtx(t), &pb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
}

func modack(t *testing.T, c *pubsub.Client, sub string, secs int32, ids ...string) {
	t.Helper()
	if err := c.SubscriptionAdminClient.ModifyAckDeadline(testCtx(t), &pb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: ids, AckDeadlineSeconds: secs}); err != nil {
		t.Fatalf("ModifyAckDeadline: %v", err)
	}
}

func ackIDs(msgs []*pb.ReceivedMessage) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.AckId
	}
	return ids
}

func dataOf(msgs []*pb.ReceivedMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Message.Data)
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
