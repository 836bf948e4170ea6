package pubsubemu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Resource names and message limits as Pub/Sub documents them
// (https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names,
// https://cloud.google.com/pubsub/quotas#resource_limits).

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

func TestResourceNamesValidated(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	ctx := testCtx(t)
	bad := []string{
		"1orders",                           // digit first
		"-orders",                           // dash first
		"has space",                         // space
		"semi;colon",                        // outside the allowed set
		"ab",                                // too short
		strings.Repeat("a", 256),            // too long
		"goog-orders",                       // reserved prefix
		"ordérs",                            // non-ASCII letter
		"orders/extra",                      // slash
		"orders\x00",                        // control character
		"\u00e9t\u00e9",                     // non-ASCII first
		"orders*",                           // asterisk
		"orders#1",                          // hash
		"orders" + strings.Repeat("x", 250), // 256 characters
	}
	for _, id := range bad {
		_, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topicName(id)})
		wantCode(t, fmt.Sprintf("CreateTopic %q", id), err, codes.InvalidArgument)
	}
	good := []string{"a-b_c.d~e+f%g", "Abc", strings.Repeat("z", 255), "go-og", "Goog"}
	for _, id := range good {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topicName(id)}); err != nil {
			t.Errorf("CreateTopic %q: %v", id, err)
		}
	}
	for _, id := range []string{"9sub", "sub sub", "goog-sub"} {
		_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: subName(id), Topic: topicName("Abc")})
		wantCode(t, fmt.Sprintf("CreateSubscription %q", id), err, codes.InvalidArgument)
	}
	sc := newSchemaClient(t, b.addr)
	_, err := sc.CreateSchema(ctx, &pb.CreateSchemaRequest{Parent: project, SchemaId: "0schema",
		Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaV1}})
	wantCode(t, "CreateSchema 0schema", err, codes.InvalidArgument)
}

func TestMessageLimits(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("limits")})
	mustSub(t, c, &pb.Subscription{Name: subName("limits-sub"), Topic: topicName("limits")})

	attrs := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("k%03d", i)] = "v"
		}
		return m
	}
	// At the limits: accepted, through the official publisher.
	ok := []*pubsub.Message{
		{Data: []byte("a"), Attributes: map[string]string{strings.Repeat("k", 256): "v"}},
		{Data: []byte("b"), Attributes: map[string]string{"k": strings.Repeat("v", 1024)}},
		{Data: []byte("c"), Attributes: attrs(100)},
	}
	publish(t, c, topicName("limits"), ok...)
	publish(t, c, topicName("limits"), &pubsub.Message{Data: []byte("d"), OrderingKey: strings.Repeat("o", 1024)})

	// Over the limits: refused with INVALID_ARGUMENT.
	over := map[string]*pubsub.Message{
		"attribute key of 257 bytes":     {Data: []byte("a"), Attributes: map[string]string{strings.Repeat("k", 257): "v"}},
		"attribute value of 1,025 bytes": {Data: []byte("b"), Attributes: map[string]string{"k": strings.Repeat("v", 1025)}},
		"101 attributes":                 {Data: []byte("c"), Attributes: attrs(101)},
		"ordering key of 1,025 bytes":    {Data: []byte("d"), OrderingKey: strings.Repeat("o", 1025)},
	}
	for what, m := range over {
		p := c.Publisher(topicName("limits"))
		p.EnableMessageOrdering = m.OrderingKey != ""
		_, err := p.Publish(testCtx(t), m).Get(testCtx(t))
		p.Stop()
		wantCode(t, what, err, codes.InvalidArgument)
	}

	// Limits the official publisher enforces itself, checked over raw gRPC.
	ctx := testCtx(t)
	many := make([]*pb.PubsubMessage, 1001)
	for i := range many {
		many[i] = &pb.PubsubMessage{Data: []byte("x")}
	}
	_, err := c.TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: topicName("limits"), Messages: many})
	wantCode(t, "publish of 1,001 messages", err, codes.InvalidArgument)
	if _, err := c.TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: topicName("limits"), Messages: many[:1000]}); err != nil {
		t.Errorf("publish of 1,000 messages: %v", err)
	}
	big := make([]byte, 10e6+1)
	_, err = c.TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: topicName("limits"), Messages: []*pb.PubsubMessage{{Data: big}}})
	wantCode(t, "message of 10 MB + 1 byte", err, codes.InvalidArgument)
	half := big[:5e6+1]
	_, err = c.TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: topicName("limits"), Messages: []*pb.PubsubMessage{{Data: half}, {Data: half}}})
	wantCode(t, "request of two 5 MB messages", err, codes.InvalidArgument)
	p := c.Publisher(topicName("limits"))
	_, err = p.Publish(ctx, &pubsub.Message{Data: big}).Get(ctx)
	p.Stop()
	if !errors.Is(err, pubsub.ErrOversizedMessage) {
		t.Errorf("official publisher with 10 MB + 1: %v, want ErrOversizedMessage", err)
	}

	// Acknowledge and ModifyAckDeadline requests are capped at 512 KiB.
	ids := make([]string, 30000)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-%010d", i)
	}
	err = c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: subName("limits-sub"), AckIds: ids})
	wantCode(t, "Acknowledge of 30,000 ack ids", err, codes.InvalidArgument)
	err = c.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: subName("limits-sub"), AckIds: ids, AckDeadlineSeconds: 10})
	wantCode(t, "ModifyAckDeadline of 30,000 ack ids", err, codes.InvalidArgument)
	if err := c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: subName("limits-sub"), AckIds: ids[:1000]}); err != nil {
		t.Errorf("Acknowledge of 1,000 unknown well-formed ack ids: %v", err)
	}
}

func TestMalformedAckIDRejected(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("acks")})
	mustSub(t, c, &pb.Subscription{Name: subName("acks-sub"), Topic: topicName("acks")})
	publish(t, c, topicName("acks"), &pubsub.Message{Data: []byte("x")})
	got := pullUntil(t, c, subName("acks-sub"), 1, 5*time.Second)
	ctx := testCtx(t)
	for _, bad := range []string{"", "nonsense", "zzzzzzzz-1", "00000000_1", got[0].AckId + "!"} {
		err := c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: subName("acks-sub"), AckIds: []string{got[0].AckId, bad}})
		wantCode(t, fmt.Sprintf("Acknowledge %q", bad), err, codes.InvalidArgument)
		err = c.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: subName("acks-sub"), AckIds: []string{bad}, AckDeadlineSeconds: 0})
		wantCode(t, fmt.Sprintf("ModifyAckDeadline %q", bad), err, codes.InvalidArgument)
	}
	// A rejected request acknowledged nothing: the good ack id still works.
	modack(t, c, subName("acks-sub"), 0, got[0].AckId)
	again := pullUntil(t, c, subName("acks-sub"), 1, 5*time.Second)
	if string(again[0].Message.Data) != "x" {
		t.Fatalf("redelivered %q", again[0].Message.Data)
	}
	// A well-formed ack id that matches nothing is ignored, as Pub/Sub does.
	ack(t, c, subName("acks-sub"), got[0].AckId, again[0].AckId)
}
