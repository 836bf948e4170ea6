package pubsubemu

import (
	"sync"
	"sync/atomic"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// message is one published message, shared by every subscription holding it.
// pm is immutable once published.
type message struct {
	seq     uint64
	pm      *pb.PubsubMessage
	size    int64
	publish time.Time
	refs    atomic.Int32 // subscriptions (and snapshots) still holding it
	// topic counts size in its retained bytes while refs > 0; set before
	// any subscription holds the message (nil: not counted).
	topic *topic
}

func newMessage(seq uint64, pm *pb.PubsubMessage) *message {
	size := int64(len(pm.Data) + len(pm.OrderingKey))
	for k, v := range pm.Attributes {
		size += int64(len(k) + len(v))
	}
	return &message{seq: seq, pm: pm, size: size, publish: pm.PublishTime.AsTime()}
}

type topic struct {
	name  string
	mu    sync.RWMutex
	proto *pb.Topic
	subs  []*subscription // copy-on-write
	// retained is the bytes of the messages its subscriptions and
	// snapshots hold (Options.MaxTopicBytes).
	retained atomic.Int64
}

// retain counts m, which a subscription is about to hold, in t's retained
// bytes.
func (t *topic) retain(m *message) {
	m.topic = t
	t.retained.Add(m.size)
}

// release uncounts m, which no subscription holds any more.
func (m *message) release() {
	if m.topic != nil {
		m.topic.retained.Add(-m.size)
	}
}

func (t *topic) removeSub(sub *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make([]*subscription, 0, len(t.subs))
	for _, x := range t.subs {
		if x != sub {
			next = append(next, x)
		}
	}
	t.subs = next
}

func (t *topic) addSub(sub *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make([]*subscription, 0, len(t.subs)+1)
	next = append(next, t.subs...)
	t.subs = append(next, sub)
}
