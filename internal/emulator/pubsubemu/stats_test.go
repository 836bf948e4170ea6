package pubsubemu

import (
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// TestSubscriptionStats: the backlog of a subscription as Cloud Monitoring
// counts it, over gRPC: every message not acked, delivered or not, and the
// publish time of the oldest.
func TestSubscriptionStats(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("stats")})
	mustSub(t, c, &pb.Subscription{Name: subName("stats"), Topic: topicName("stats"), AckDeadlineSeconds: 60})
	stats := func() SubscriptionStats {
		t.Helper()
		st, err := b.emu.SubscriptionStats(subName("stats"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := stats(); st != (SubscriptionStats{}) {
		t.Errorf("empty subscription: %+v", st)
	}
	publish(t, c, topicName("stats"), &pubsub.Message{Data: []byte("1")})
	time.Sleep(10 * time.Millisecond) // distinct publish times
	publish(t, c, topicName("stats"), &pubsub.Message{Data: []byte("2")}, &pubsub.Message{Data: []byte("3")})
	got := pullUntil(t, c, subName("stats"), 3, 10*time.Second)
	first := got[0].GetMessage().GetPublishTime().AsTime()
	for _, m := range got {
		if pt := m.GetMessage().GetPublishTime().AsTime(); pt.Before(first) {
			first = pt
		}
	}
	if st := stats(); st.Undelivered != 3 || st.Outstanding != 3 || !st.OldestUnacked.Equal(first) {
		t.Errorf("3 delivered, none acked: %+v, want 3 undelivered, 3 outstanding, oldest %v", st, first)
	}
	// Ack the oldest: the backlog shrinks and its oldest moves on.
	var rest []string
	for _, m := range got {
		if m.GetMessage().GetPublishTime().AsTime().Equal(first) {
			ack(t, c, subName("stats"), m.GetAckId())
		} else {
			rest = append(rest, m.GetAckId())
		}
	}
	if st := stats(); st.Undelivered != 2 || !st.OldestUnacked.After(first) {
		t.Errorf("after acking the oldest: %+v, want 2 undelivered, oldest after %v", st, first)
	}
	ack(t, c, subName("stats"), rest...)
	if st := stats(); st != (SubscriptionStats{}) {
		t.Errorf("all acked: %+v", st)
	}
	if _, err := b.emu.SubscriptionStats(subName("missing")); err == nil {
		t.Error("stats of a missing subscription: no error")
	}
}
