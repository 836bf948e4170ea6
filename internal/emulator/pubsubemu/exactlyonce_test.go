package pubsubemu

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exactly-once delivery as Pub/Sub documents it
// (https://cloud.google.com/pubsub/docs/exactly-once-delivery): stream
// responses say the subscription is exactly-once, an ack or modack of an
// expired or unknown ack id fails with INVALID_ARGUMENT and per-ack-id
// ErrorInfo metadata, and a confirmed ack is never redelivered.

// wantInvalidAckIDs checks err is Pub/Sub's exactly-once ack failure for ids.
func wantInvalidAckIDs(t *testing.T, what string, err error, ids ...string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("%s: got %v, want INVALID_ARGUMENT", what, err)
	}
	ae, ok := apierror.FromError(err)
	if !ok {
		t.Fatalf("%s: %v is not an API error", what, err)
	}
	if ae.Reason() != "EXACTLY_ONCE_ACKID_FAILURE" || ae.Domain() != "pubsub.googleapis.com" {
		t.Errorf("%s: ErrorInfo reason %q domain %q", what, ae.Reason(), ae.Domain())
	}
	md := ae.Metadata()
	if len(md) != len(ids) {
		t.Errorf("%s: metadata %v, want exactly %v", what, md, ids)
	}
	for _, id := range ids {
		if md[id] != "PERMANENT_FAILURE_INVALID_ACK_ID" {
			t.Errorf("%s: metadata[%s] = %q, want PERMANENT_FAILURE_INVALID_ACK_ID", what, id, md[id])
		}
	}
}

func TestExactlyOnceStreamPropertiesAndConfirmations(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("eod")})
	mustSub(t, c, &pb.Subscription{Name: subName("eod-sub"), Topic: topicName("eod"), EnableExactlyOnceDelivery: true})
	mustSub(t, c, &pb.Subscription{Name: subName("plain-sub"), Topic: topicName("eod")})
	publish(t, c, topicName("eod"), &pubsub.Message{Data: []byte("x")})

	open := func(sub string) (pb.Subscriber_StreamingPullClient, *pb.StreamingPullResponse) {
		ctx, cancel := context.WithCancel(testCtx(t))
		t.Cleanup(cancel)
		sp, err := c.SubscriptionAdminClient.StreamingPull(ctx)
		if err != nil {
			t.Fatalf("StreamingPull: %v", err)
		}
		if err := sp.Send(&pb.StreamingPullRequest{Subscription: sub, StreamAckDeadlineSeconds: 60}); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := sp.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		return sp, resp
	}
	_, plain := open(subName("plain-sub"))
	if p := plain.GetSubscriptionProperties(); p == nil || p.ExactlyOnceDeliveryEnabled {
		t.Fatalf("plain subscription's stream properties = %v", p)
	}
	sp, resp := open(subName("eod-sub"))
	if !resp.GetSubscriptionProperties().GetExactlyOnceDeliveryEnabled() {
		t.Fatalf("exactly-once subscription's stream properties = %v", resp.GetSubscriptionProperties())
	}
	if len(resp.ReceivedMessages) != 1 {
		t.Fatalf("received %d messages", len(resp.ReceivedMessages))
	}
	good, unknown := resp.ReceivedMessages[0].AckId, b.emu.bootID+"-zzzz"
	if err := sp.Send(&pb.StreamingPullRequest{ModifyDeadlineAckIds: []string{good, unknown}, ModifyDeadlineSeconds: []int32{30, 30}}); err != nil {
		t.Fatalf("send modack: %v", err)
	}
	resp, err := sp.Recv()
	if err != nil {
		t.Fatalf("recv modack confirmation: %v", err)
	}
	mc := resp.GetModifyAckDeadlineConfirmation()
	if !slices.Equal(mc.GetAckIds(), []string{good}) || !slices.Equal(mc.GetInvalidAckIds(), []string{unknown}) {
		t.Fatalf("modack confirmation = %v", mc)
	}
	if err := sp.Send(&pb.StreamingPullRequest{AckIds: []string{good, unknown}}); err != nil {
		t.Fatalf("send ack: %v", err)
	}
	resp, err = sp.Recv()
	if err != nil {
		t.Fatalf("recv ack confirmation: %v", err)
	}
	ac := resp.GetAcknowledgeConfirmation()
	if !slices.Equal(ac.GetAckIds(), []string{good}) || !slices.Equal(ac.GetInvalidAckIds(), []string{unknown}) {
		t.Fatalf("ack confirmation = %v", ac)
	}
	if !resp.GetSubscriptionProperties().GetExactlyOnceDeliveryEnabled() {
		t.Fatalf("confirmation without the subscription properties")
	}
}

func TestExactlyOnceExpiredAckIDFails(t *testing.T) {
	clk := newFakeClock()
	b := startEmu(t, Options{Now: clk.Now})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("eod")})
	mustSub(t, c, &pb.Subscription{Name: subName("eod-sub"), Topic: topicName("eod"), AckDeadlineSeconds: 10, EnableExactlyOnceDelivery: true})
	publish(t, c, topicName("eod"), &pubsub.Message{Data: []byte("x")})
	ctx := testCtx(t)

	first := pull(t, c, subName("eod-sub"), 1)
	if len(first) != 1 {
		t.Fatalf("pulled %d", len(first))
	}
	clk.Advance(11 * time.Second) // past the deadline
	err := c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: subName("eod-sub"), AckIds: []string{first[0].AckId}})
	wantInvalidAckIDs(t, "ack of an expired ack id", err, first[0].AckId)
	err = c.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: subName("eod-sub"), AckIds: []string{first[0].AckId}, AckDeadlineSeconds: 30})
	wantInvalidAckIDs(t, "modack of an expired ack id", err, first[0].AckId)

	second := pull(t, c, subName("eod-sub"), 1)
	if len(second) != 1 || second[0].AckId == first[0].AckId {
		t.Fatalf("after expiry pulled %v", second)
	}
	unknown := b.emu.bootID + "-zzzz"
	err = c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: subName("eod-sub"), AckIds: []string{unknown, first[0].AckId}})
	wantInvalidAckIDs(t, "ack of unknown and stale ack ids", err, unknown, first[0].AckId)
	ack(t, c, subName("eod-sub"), second[0].AckId) // in time: confirmed
	clk.Advance(time.Hour)
	if got := pull(t, c, subName("eod-sub"), 1); len(got) != 0 {
		t.Fatalf("a confirmed ack was redelivered: %v", dataOf(got))
	}
}

// TestExactlyOnceAckWithResult uses the official client's AckWithResult: an
// ack after the deadline reports AcknowledgeStatusInvalidAckID and the
// message comes again; an ack in time reports success and is final.
func TestExactlyOnceAckWithResult(t *testing.T) {
	clk := newFakeClock()
	b := startEmu(t, Options{Now: clk.Now})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("eod")})
	mustSub(t, c, &pb.Subscription{Name: subName("eod-sub"), Topic: topicName("eod"), AckDeadlineSeconds: 10, EnableExactlyOnceDelivery: true})
	ids := publish(t, c, topicName("eod"), &pubsub.Message{Data: []byte("x")})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var statuses []pubsub.AcknowledgeStatus
	err := c.Subscriber(subName("eod-sub")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.ID != ids[0] {
			t.Errorf("received %s, want %s", m.ID, ids[0])
		}
		if len(statuses) == 0 {
			clk.Advance(11 * time.Minute) // past any lease the client set
		}
		st, err := m.AckWithResult().Get(ctx)
		statuses = append(statuses, st)
		if st == pubsub.AcknowledgeStatusSuccess {
			if err != nil {
				t.Errorf("successful ack with error %v", err)
			}
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if !slices.Equal(statuses, []pubsub.AcknowledgeStatus{pubsub.AcknowledgeStatusInvalidAckID, pubsub.AcknowledgeStatusSuccess}) {
		t.Fatalf("ack statuses = %v, want [InvalidAckID Success]", statuses)
	}
	clk.Advance(time.Hour)
	if got := pull(t, c, subName("eod-sub"), 1); len(got) != 0 {
		t.Fatalf("a confirmed ack was redelivered: %v", dataOf(got))
	}
}
