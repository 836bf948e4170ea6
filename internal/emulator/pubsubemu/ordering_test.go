package pubsubemu

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Ordered delivery as Pub/Sub documents it
// (https://cloud.google.com/pubsub/docs/ordering): messages of one key arrive
// in publish order, several of a key may share a response, and the key's
// next messages come only once those are acknowledged; a nacked message is
// delivered again before the messages after it.

func keyData(msgs []*pb.ReceivedMessage, key string) []string {
	var out []string
	for _, m := range msgs {
		if m.Message.OrderingKey == key {
			out = append(out, string(m.Message.Data))
		}
	}
	return out
}

func TestOrderedBatchesPerKey(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("ordered")})
	mustSub(t, c, &pb.Subscription{Name: subName("ordered-sub"), Topic: topicName("ordered"), AckDeadlineSeconds: 60, EnableMessageOrdering: true})
	var msgs []*pubsub.Message
	for i := 1; i <= 5; i++ {
		msgs = append(msgs, &pubsub.Message{Data: fmt.Appendf(nil, "A%d", i), OrderingKey: "A"})
		if i <= 3 {
			msgs = append(msgs, &pubsub.Message{Data: fmt.Appendf(nil, "B%d", i), OrderingKey: "B"})
		}
	}
	publish(t, c, topicName("ordered"), msgs...)

	first := pullUntil(t, c, subName("ordered-sub"), 8, 5*time.Second)
	if a := keyData(first, "A"); !slices.Equal(a, []string{"A1", "A2", "A3", "A4", "A5"}) {
		t.Fatalf("key A in the first response: %v", a)
	}
	if bb := keyData(first, "B"); !slices.Equal(bb, []string{"B1", "B2", "B3"}) {
		t.Fatalf("key B in the first response: %v", bb)
	}
	byData := map[string]string{}
	for _, m := range first {
		byData[string(m.Message.Data)] = m.AckId
	}

	publish(t, c, topicName("ordered"), &pubsub.Message{Data: []byte("A6"), OrderingKey: "A"}, &pubsub.Message{Data: []byte("C1"), OrderingKey: "C"})
	if got := pullUntil(t, c, subName("ordered-sub"), 1, 5*time.Second); len(got) != 1 || string(got[0].Message.Data) != "C1" {
		t.Fatalf("with A outstanding pulled %v, want only C1", dataOf(got))
	}
	ack(t, c, subName("ordered-sub"), byData["A1"], byData["A2"], byData["A3"], byData["A5"])
	// A4 is still outstanding, so A6 waits.
	if got := pull(t, c, subName("ordered-sub"), 10); len(got) != 0 {
		t.Fatalf("A6 delivered while A4 was outstanding: %v", dataOf(got))
	}
	modack(t, c, subName("ordered-sub"), 0, byData["A4"]) // nack: A4 comes again, before A6
	got := pullUntil(t, c, subName("ordered-sub"), 2, 5*time.Second)
	if a := keyData(got, "A"); !slices.Equal(a, []string{"A4", "A6"}) {
		t.Fatalf("after the nack of A4 pulled %v, want [A4 A6]", a)
	}
}

func TestOrderedNackReturnsBeforeLaterMessages(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("ordered")})
	mustSub(t, c, &pb.Subscription{Name: subName("ordered-sub"), Topic: topicName("ordered"), AckDeadlineSeconds: 60, EnableMessageOrdering: true})
	publish(t, c, topicName("ordered"),
		&pubsub.Message{Data: []byte("A1"), OrderingKey: "A"},
		&pubsub.Message{Data: []byte("A2"), OrderingKey: "A"},
		&pubsub.Message{Data: []byte("A3"), OrderingKey: "A"})
	first := pullUntil(t, c, subName("ordered-sub"), 3, 5*time.Second)
	publish(t, c, topicName("ordered"), &pubsub.Message{Data: []byte("A4"), OrderingKey: "A"})
	modack(t, c, subName("ordered-sub"), 0, first[1].AckId) // nack A2 while A1 and A3 are out
	if got := pull(t, c, subName("ordered-sub"), 10); len(got) != 0 {
		t.Fatalf("pulled %v while A1 and A3 were outstanding", dataOf(got))
	}
	ack(t, c, subName("ordered-sub"), first[0].AckId, first[2].AckId)
	got := pullUntil(t, c, subName("ordered-sub"), 2, 5*time.Second)
	if d := dataOf(got); !slices.Equal(d, []string{"A2", "A4"}) {
		t.Fatalf("after acking A1 and A3 pulled %v, want [A2 A4]", d)
	}
}

// TestOrderedReceiveOneKey drains one key through the official client's
// ordered Receive: every message once, in publish order.
func TestOrderedReceiveOneKey(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("ordered")})
	mustSub(t, c, &pb.Subscription{Name: subName("ordered-sub"), Topic: topicName("ordered"), EnableMessageOrdering: true})
	const n = 2000
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		msgs[i] = &pubsub.Message{Data: fmt.Appendf(nil, "%05d", i), OrderingKey: "K"}
	}
	publish(t, c, topicName("ordered"), msgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	err := c.Subscriber(subName("ordered-sub")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(m.Data))
		m.Ack()
		if len(got) == n {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(got) != n {
		t.Fatalf("received %d of %d", len(got), n)
	}
	for i, d := range got {
		if want := fmt.Sprintf("%05d", i); d != want {
			t.Fatalf("message %d = %s, want %s", i, d, want)
		}
	}
}
