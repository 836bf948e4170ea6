package pubsubemu

import (
	"fmt"
	"time"
)

// SubscriptionStats is what a subscription holds, as Cloud Monitoring
// reports it for Pub/Sub: pubsub.googleapis.com/subscription/
// num_undelivered_messages and oldest_unacked_message_age.
type SubscriptionStats struct {
	// Undelivered is the messages not yet acknowledged (the backlog),
	// delivered or not.
	Undelivered int64
	// Outstanding is those of them delivered and awaiting their ack.
	Outstanding int64
	// OldestUnacked is the publish time of the oldest of them (zero: none).
	OldestUnacked time.Time
}

// SubscriptionStats returns the backlog of the subscription named name
// (projects/P/subscriptions/S).
func (s *Server) SubscriptionStats(name string) (SubscriptionStats, error) {
	s.mu.RLock()
	sub, ok := s.subs[name]
	s.mu.RUnlock()
	if !ok {
		return SubscriptionStats{}, fmt.Errorf("pubsubemu: subscription stats: %s not found", name)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var st SubscriptionStats
	add := func(sm *subMsg) {
		if sm.state == stAcked || sm.state == stGone {
			return
		}
		st.Undelivered++
		if sm.state == stOutstanding {
			st.Outstanding++
		}
		if st.OldestUnacked.IsZero() || sm.m.publish.Before(st.OldestUnacked) {
			st.OldestUnacked = sm.m.publish
		}
	}
	sub.ready.each(add)
	sub.redeliver.each(add)
	for _, sm := range sub.timers {
		add(sm)
	}
	for _, ks := range sub.keys {
		ks.pending.each(add)
	}
	return st, nil
}
