package pubsubemu

import (
	"context"
	"fmt"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The scenarios in this file run against the emulator and pstest, so the two agree.

func TestSuitePublishReceive(t *testing.T) {
	slowtest.Skip(t, "StreamingPull of a large backlog")
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("orders")})
		mustSub(t, c, &pb.Subscription{Name: subName("orders-sub"), Topic: topicName("orders")})
		const n = 200
		msgs := make([]*pubsub.Message, n)
		for i := range msgs {
			msgs[i] = &pubsub.Message{Data: fmt.Appendf(nil, "m%03d", i), Attributes: map[string]string{"i": fmt.Sprint(i)}}
		}
		ids := publish(t, c, topicName("orders"), msgs...)
		if len(ids) != n {
			t.Fatalf("got %d ids", len(ids))
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var mu sync.Mutex
		got := map[string]string{}
		err := c.Subscriber(subName("orders-sub")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			mu.Lock()
			defer mu.Unlock()
			got[m.ID] = string(m.Data)
			if m.Attributes["i"] == "" {
				t.Errorf("message %s lost its attributes", m.ID)
			}
			m.Ack()
			if len(got) == n {
				cancel()
			}
		})
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(got) != n {
			t.Fatalf("received %d distinct messages, want %d", len(got), n)
		}
		for i, id := range ids {
			if want := fmt.Sprintf("m%03d", i); got[id] != want {
				t.Errorf("message %s = %q, want %q", id, got[id], want)
			}
		}
		// Everything was acked: nothing comes back once the acks have landed.
		eventually(t, 5*time.Second, "acks to land", func() bool {
			return len(pull(t, c, subName("orders-sub"), 10)) == 0
		})
	})
}

func TestSuitePullAckNack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
		mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), AckDeadlineSeconds: 60})
		publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("a")}, &pubsub.Message{Data: []byte("b")}, &pubsub.Message{Data: []byte("c")})

		got := pullUntil(t, c, subName("sub"), 3, 5*time.Second)
		sort.Slice(got, func(i, j int) bool { return string(got[i].Message.Data) < string(got[j].Message.Data) })
		if d := dataOf(got); !slices.Equal(d, []string{"a", "b", "c"}) {
			t.Fatalf("pulled %v", d)
		}
		if got[0].DeliveryAttempt != 0 {
			t.Errorf("delivery_attempt = %d without a dead-letter policy, want 0", got[0].DeliveryAttempt)
		}
		ack(t, c, subName("sub"), got[0].AckId)       // a: acked
		modack(t, c, subName("sub"), 0, got[1].AckId) // b: nacked
		// c stays outstanding with a 60 s deadline.

		again := pullUntil(t, c, subName("sub"), 1, 5*time.Second)
		if string(again[0].Message.Data) != "b" {
			t.Fatalf("redelivered %q, want b", again[0].Message.Data)
		}
		if again[0].AckId == got[1].AckId {
			t.Errorf("redelivery reused ack id %s", again[0].AckId)
		}
		if more := pull(t, c, subName("sub"), 10); len(more) != 0 {
			t.Fatalf("pulled %v while a is acked and c, b are outstanding", dataOf(more))
		}
		ack(t, c, subName("sub"), again[0].AckId, got[2].AckId)
		if more := pull(t, c, subName("sub"), 10); len(more) != 0 {
			t.Fatalf("pulled %v after acking everything", dataOf(more))
		}
	})
}

func TestSuiteRedeliveryAfterDeadline(t *testing.T) {
	slowtest.Skip(t, "waits out ack deadlines")
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
		mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), AckDeadlineSeconds: 10})
		publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("x")})
		first := pullUntil(t, c, subName("sub"), 1, 5*time.Second)
		// Shorten the deadline to 1 s and let it lapse.
		modack(t, c, subName("sub"), 1, first[0].AckId)
		start := time.Now()
		second := pullUntil(t, c, subName("sub"), 1, 5*time.Second)
		if string(second[0].Message.Data) != "x" || second[0].Message.MessageId != first[0].Message.MessageId {
			t.Fatalf("redelivered %v, want x", second[0].Message)
		}
		if el := time.Since(start); el < 500*time.Millisecond {
			t.Errorf("redelivered after %v, before the 1 s deadline", el)
		}
		// The stale ack id is ignored; the fresh one acks.
		ack(t, c, subName("sub"), first[0].AckId)
		modack(t, c, subName("sub"), 1, second[0].AckId)
		third := pullUntil(t, c, subName("sub"), 1, 5*time.Second)
		ack(t, c, subName("sub"), third[0].AckId)
		if more := pull(t, c, subName("sub"), 10); len(more) != 0 {
			t.Fatalf("pulled %v after ack", dataOf(more))
		}
	})
}

func TestSuiteDeadLetter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
		mustTopic(t, c, &pb.Topic{Name: topicName("dlq")})
		mustSub(t, c, &pb.Subscription{Name: subName("dlq-sub"), Topic: topicName("dlq")})
		mustSub(t, c, &pb.Subscription{
			Name: subName("sub"), Topic: topicName("topic"), AckDeadlineSeconds: 60,
			DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicName("dlq"), MaxDeliveryAttempts: 5},
		})
		publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("poison"), Attributes: map[string]string{"k": "v"}})
		for attempt := int32(1); attempt <= 5; attempt++ {
			got := pullUntil(t, c, subName("sub"), 1, 5*time.Second)
			if got[0].DeliveryAttempt != attempt {
				t.Fatalf("delivery_attempt = %d, want %d", got[0].DeliveryAttempt, attempt)
			}
			modack(t, c, subName("sub"), 0, got[0].AckId)
		}
		dead := pullUntil(t, c, subName("dlq-sub"), 1, 5*time.Second)
		if string(dead[0].Message.Data) != "poison" || dead[0].Message.Attributes["k"] != "v" {
			t.Fatalf("dead letter = %v", dead[0].Message)
		}
		if b.emu != nil {
			a := dead[0].Message.Attributes
			if a["CloudPubSubDeadLetterSourceDeliveryCount"] != "5" || a["CloudPubSubDeadLetterSourceSubscription"] != "sub" ||
				a["CloudPubSubDeadLetterSourceSubscriptionProject"] != "test-proj" || a["CloudPubSubDeadLetterSourceTopicPublishTime"] == "" {
				t.Errorf("dead-letter attributes = %v", a)
			}
		}
		if more := pull(t, c, subName("sub"), 10); len(more) != 0 {
			t.Fatalf("the original subscription still delivers %v", dataOf(more))
		}
	})
}

func TestSuiteOrderingKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
		mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), AckDeadlineSeconds: 60, EnableMessageOrdering: true})
		var msgs []*pubsub.Message
		for _, d := range []string{"a1", "a2", "a3"} {
			msgs = append(msgs, &pubsub.Message{Data: []byte(d), OrderingKey: "A"})
		}
		publish(t, c, topicName("topic"), msgs...)
		publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("b1"), OrderingKey: "B"}, &pubsub.Message{Data: []byte("b2"), OrderingKey: "B"})

		var seen []string
		deadline := time.Now().Add(10 * time.Second)
		for len(seen) < 5 && time.Now().Before(deadline) {
			got := pull(t, c, subName("sub"), 10)
			for _, m := range got {
				seen = append(seen, string(m.Message.Data))
			}
			if len(got) > 0 {
				ack(t, c, subName("sub"), ackIDs(got)...)
			}
		}
		var a, bb []string
		for _, d := range seen {
			if d[0] == 'a' {
				a = append(a, d)
			} else {
				bb = append(bb, d)
			}
		}
		if !slices.Equal(a, []string{"a1", "a2", "a3"}) || !slices.Equal(bb, []string{"b1", "b2"}) {
			t.Fatalf("per-key order: A=%v B=%v", a, bb)
		}
	})
}

func TestSuiteFilter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
		mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), Filter: `attributes.kind = "sale" AND NOT attributes:test`})
		publish(t, c, topicName("topic"),
			&pubsub.Message{Data: []byte("1"), Attributes: map[string]string{"kind": "sale"}},
			&pubsub.Message{Data: []byte("2"), Attributes: map[string]string{"kind": "return"}},
			&pubsub.Message{Data: []byte("3"), Attributes: map[string]string{"kind": "sale", "test": "y"}},
			&pubsub.Message{Data: []byte("4"), Attributes: map[string]string{"kind": "sale"}},
		)
		got := pullUntil(t, c, subName("sub"), 2, 5*time.Second)
		d := dataOf(got)
		sort.Strings(d)
		if !slices.Equal(d, []string{"1", "4"}) {
			t.Fatalf("filtered delivery = %v, want [1 4]", d)
		}
		ack(t, c, subName("sub"), ackIDs(got)...)
		if more := pull(t, c, subName("sub"), 10); len(more) != 0 {
			t.Fatalf("filtered-out messages delivered: %v", dataOf(more))
		}
	})
}

func TestSuiteAdmin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		ctx := testCtx(t)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic1"), Labels: map[string]string{"env": "dev"}})
		mustTopic(t, c, &pb.Topic{Name: topicName("topic2")})
		mustSub(t, c, &pb.Subscription{Name: subName("sub1"), Topic: topicName("topic1")})
		mustSub(t, c, &pb.Subscription{Name: subName("sub2"), Topic: topicName("topic1")})

		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topicName("topic1")}); err == nil {
			t.Error("creating an existing topic succeeded")
		}
		tp, err := c.TopicAdminClient.GetTopic(ctx, &pb.GetTopicRequest{Topic: topicName("topic1")})
		if err != nil || tp.Labels["env"] != "dev" {
			t.Fatalf("GetTopic = %v, %v", tp, err)
		}
		var topics []string
		for it := c.TopicAdminClient.ListTopics(ctx, &pb.ListTopicsRequest{Project: project}); ; {
			tp, err := it.Next()
			if err != nil {
				break
			}
			topics = append(topics, tp.Name)
		}
		sort.Strings(topics)
		if !slices.Equal(topics, []string{topicName("topic1"), topicName("topic2")}) {
			t.Errorf("ListTopics = %v", topics)
		}
		var subs []string
		for it := c.TopicAdminClient.ListTopicSubscriptions(ctx, &pb.ListTopicSubscriptionsRequest{Topic: topicName("topic1")}); ; {
			s, err := it.Next()
			if err != nil {
				break
			}
			subs = append(subs, s)
		}
		sort.Strings(subs)
		if !slices.Equal(subs, []string{subName("sub1"), subName("sub2")}) {
			t.Errorf("ListTopicSubscriptions = %v", subs)
		}
		up, err := c.SubscriptionAdminClient.UpdateSubscription(ctx, &pb.UpdateSubscriptionRequest{
			Subscription: &pb.Subscription{Name: subName("sub1"), AckDeadlineSeconds: 42, MessageRetentionDuration: durationpb.New(time.Hour)},
			UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"ack_deadline_seconds", "message_retention_duration"}},
		})
		if err != nil || up.AckDeadlineSeconds != 42 || up.MessageRetentionDuration.AsDuration() != time.Hour {
			t.Fatalf("UpdateSubscription = %v, %v", up, err)
		}
		got, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: subName("sub1")})
		if err != nil || got.AckDeadlineSeconds != 42 || got.Topic != topicName("topic1") {
			t.Fatalf("GetSubscription = %v, %v", got, err)
		}
		if err := c.SubscriptionAdminClient.DeleteSubscription(ctx, &pb.DeleteSubscriptionRequest{Subscription: subName("sub2")}); err != nil {
			t.Fatalf("DeleteSubscription: %v", err)
		}
		if _, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: subName("sub2")}); err == nil {
			t.Error("deleted subscription still found")
		}
		if err := c.TopicAdminClient.DeleteTopic(ctx, &pb.DeleteTopicRequest{Topic: topicName("topic2")}); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		if _, err := c.TopicAdminClient.GetTopic(ctx, &pb.GetTopicRequest{Topic: topicName("topic2")}); err == nil {
			t.Error("deleted topic still found")
		}
	})
}

func TestSuiteReceiveNackDeadLetter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		c := newClient(t, b.addr)
		mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
		mustTopic(t, c, &pb.Topic{Name: topicName("dlq")})
		mustSub(t, c, &pb.Subscription{Name: subName("dlq-sub"), Topic: topicName("dlq")})
		mustSub(t, c, &pb.Subscription{
			Name: subName("sub"), Topic: topicName("topic"),
			DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicName("dlq"), MaxDeliveryAttempts: 5},
		})
		publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("poison")})

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var mu sync.Mutex
		var attempts []int
		go func() {
			_ = c.Subscriber(subName("sub")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
				mu.Lock()
				if m.DeliveryAttempt != nil {
					attempts = append(attempts, *m.DeliveryAttempt)
				} else {
					attempts = append(attempts, 0)
				}
				mu.Unlock()
				m.Nack()
			})
		}()
		var dead *pubsub.Message
		err := c.Subscriber(subName("dlq-sub")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			mu.Lock()
			dead = m
			mu.Unlock()
			cancel()
		})
		if err != nil {
			t.Fatalf("Receive(dlq-sub): %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if dead == nil || string(dead.Data) != "poison" {
			t.Fatalf("dead letter = %v", dead)
		}
		if !slices.Equal(attempts, []int{1, 2, 3, 4, 5}) {
			t.Errorf("delivery attempts seen by Receive = %v, want [1 2 3 4 5]", attempts)
		}
	})
}
