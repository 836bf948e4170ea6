package pubsubemu

import (
	"sort"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	defaultMaxDeliveryAttempts = 5
	defaultMinBackoff          = 10 * time.Second
	defaultMaxBackoff          = 600 * time.Second
	pullWaitMax                = 5 * time.Second
)

// keyState is an ordering key in use on an ordered subscription. The
// messages of one take (a Pull or stream response) may share a key, in
// publish order; later messages of the key wait in pending until every one of
// them is acked or returned (nacked, expired), as Pub/Sub delivers
// (https://cloud.google.com/pubsub/docs/ordering).
type keyState struct {
	pending deque  // waiting, in publish order
	out     int    // holders: delivered and not yet acked, or waiting out a retry backoff
	take    uint64 // the take that holds the key; 0 = released, free for the next take
}

type subscription struct {
	srv    *Server
	name   string
	filter *filterExpr // immutable

	mu          sync.Mutex
	proto       *pb.Subscription
	deleted     bool
	ordering    bool
	retainAcked bool
	snapshot    bool    // holds a snapshot's messages; never delivers
	push        *pusher // running push delivery, nil for pull
	exactlyOnce bool
	props       *pb.StreamingPullResponse_SubscriptionProperties // sent on every stream response
	ackDeadline time.Duration
	retention   time.Duration
	dlTopic     string
	maxAttempts int32
	retry       bool
	minBackoff  time.Duration
	maxBackoff  time.Duration

	ready       deque // never delivered, publish order
	redeliver   deque // nacked, expired or released by an ordering key: served first
	acked       deque // retained acked messages, for seek
	outstanding map[string]*subMsg
	timers      timerHeap
	keys        map[string]*keyState
	takeSeq     uint64
	streams     map[*streamFlow]struct{}
	notify      chan struct{} // closed and replaced when messages or capacity appear

	ackPrefix string
	ackSeq    uint64
	outPeak   int // largest outstanding map since it was last recreated

	ops  []storeOp // persistence writes gathered under mu
	dead []*subMsg // dead letters gathered under mu
}

func (s *Server) newSubscription(sp *pb.Subscription) (*subscription, error) {
	var f *filterExpr
	if sp.Filter != "" {
		var err error
		if f, err = parseFilter(sp.Filter); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid filter %q: %v", sp.Filter, err)
		}
	}
	sub := &subscription{
		srv:         s,
		name:        sp.Name,
		filter:      f,
		outstanding: map[string]*subMsg{},
		keys:        map[string]*keyState{},
		streams:     map[*streamFlow]struct{}{},
		notify:      make(chan struct{}),
		ackPrefix:   s.bootID + "-",
	}
	sub.configureLocked(sp)
	return sub, nil
}

// configureLocked applies a subscription's settings.
func (sub *subscription) configureLocked(sp *pb.Subscription) {
	sub.proto = sp
	sub.ordering = sp.EnableMessageOrdering
	sub.retainAcked = sp.RetainAckedMessages
	sub.exactlyOnce = sp.EnableExactlyOnceDelivery
	sub.props = &pb.StreamingPullResponse_SubscriptionProperties{
		ExactlyOnceDeliveryEnabled: sp.EnableExactlyOnceDelivery,
		MessageOrderingEnabled:     sp.EnableMessageOrdering,
	}
	sub.ackDeadline = time.Duration(sp.AckDeadlineSeconds) * time.Second
	if sub.ackDeadline <= 0 {
		sub.ackDeadline = defaultAckDeadline
	}
	sub.retention = defaultRetention
	if d := sp.MessageRetentionDuration; d != nil {
		sub.retention = d.AsDuration()
	}
	sub.dlTopic, sub.maxAttempts = "", 0
	if dlp := sp.DeadLetterPolicy; dlp != nil && dlp.DeadLetterTopic != "" {
		sub.dlTopic = dlp.DeadLetterTopic
		sub.maxAttempts = dlp.MaxDeliveryAttempts
		if sub.maxAttempts == 0 {
			sub.maxAttempts = defaultMaxDeliveryAttempts
		}
	}
	sub.retry = sp.RetryPolicy != nil
	sub.minBackoff, sub.maxBackoff = defaultMinBackoff, defaultMaxBackoff
	if rp := sp.RetryPolicy; rp != nil {
		if rp.MinimumBackoff != nil {
			sub.minBackoff = rp.MinimumBackoff.AsDuration()
		}
		if rp.MaximumBackoff != nil {
			sub.maxBackoff = rp.MaximumBackoff.AsDuration()
		}
	}
}

func (sub *subscription) signalLocked() {
	close(sub.notify)
	sub.notify = make(chan struct{})
}

func (sub *subscription) expired(sm *subMsg, now time.Time) bool {
	return now.Sub(sm.m.publish) > sub.retention
}

// restore puts a message loaded from the data dir back in the backlog.
func (sub *subscription) restore(m *message, acked bool, attempts int32) {
	sm := &subMsg{m: m, hidx: -1, attempts: attempts}
	if acked {
		sm.state = stAcked
		sub.acked.push(sm)
		return
	}
	sub.ready.push(sm)
}

func (sub *subscription) enqueue(msgs []*message) {
	sub.mu.Lock()
	if sub.deleted {
		for _, m := range msgs {
			sub.freeLocked(&subMsg{m: m})
		}
		ops := sub.flushLocked()
		sub.mu.Unlock()
		sub.srv.persist(ops...)
		return
	}
	for _, m := range msgs {
		sub.ready.push(&subMsg{m: m, hidx: -1})
	}
	sub.signalLocked()
	sub.mu.Unlock()
}

// freeLocked forgets a message for this subscription.
func (sub *subscription) freeLocked(sm *subMsg) {
	if sm.holder {
		sub.keyDoneLocked(sm)
	}
	sm.state = stGone
	last := sm.m.refs.Add(-1) == 0
	if last {
		sm.m.release()
	}
	if sub.srv.store != nil {
		sub.ops = append(sub.ops, subMsgDelete(sub.name, sm.m.seq))
		if last {
			sub.ops = append(sub.ops, msgDelete(sm.m.seq))
		}
	}
}

// keyDoneLocked drops a holder of its ordering key (acked or freed); when
// none is left, the key's next messages go.
func (sub *subscription) keyDoneLocked(sm *subMsg) {
	sm.holder = false
	k := sm.m.pm.OrderingKey
	ks := sub.keys[k]
	if ks == nil {
		return
	}
	if ks.out--; ks.out > 0 {
		return
	}
	sub.releaseKeyLocked(k, ks)
}

// keyReturnLocked puts a nacked or expired holder back in front of its key's
// waiting messages, so it is delivered again before them.
func (sub *subscription) keyReturnLocked(sm *subMsg) {
	sm.holder = false
	k := sm.m.pm.OrderingKey
	ks := sub.keys[k]
	if ks == nil {
		sm.state = stQueued
		sub.redeliver.push(sm)
		return
	}
	sm.state = stKeyWait
	ks.pending.insertSorted(sm)
	if ks.out--; ks.out > 0 {
		return
	}
	sub.releaseKeyLocked(k, ks)
}

// releaseKeyLocked hands up to one response's worth of the key's waiting
// messages to the next take, in order.
func (sub *subscription) releaseKeyLocked(k string, ks *keyState) {
	if ks.pending.len() == 0 {
		delete(sub.keys, k)
		return
	}
	ks.take = 0
	for i := 0; i < maxMessagesPerResp && ks.pending.len() > 0; i++ {
		nx := ks.pending.pop()
		nx.state = stQueued
		sub.redeliver.push(nx)
	}
	sub.signalLocked()
}

func (sub *subscription) flushLocked() []storeOp {
	ops := sub.ops
	sub.ops = nil
	return ops
}

// after runs the work gathered under mu: persistence and dead letters.
func (sub *subscription) after(ops []storeOp, dead []*subMsg, dlTopic string) {
	sub.srv.persist(ops...)
	if len(dead) > 0 {
		sub.srv.forwardDeadLetters(sub.name, dlTopic, dead)
	}
}

// unlock releases mu and does the gathered work.
func (sub *subscription) unlock() {
	// Go maps never shrink: once a large burst is fully acked, start afresh so
	// memory stays bounded by what is outstanding.
	if len(sub.outstanding) == 0 && sub.outPeak > 4096 {
		sub.outstanding = map[string]*subMsg{}
		sub.outPeak = 0
	}
	if len(sub.timers) == 0 && cap(sub.timers) > 4096 {
		sub.timers = nil
	}
	ops := sub.flushLocked()
	dead := sub.dead
	sub.dead = nil
	dlTopic := sub.dlTopic
	sub.mu.Unlock()
	sub.after(ops, dead, dlTopic)
}

// purgeLocked drops everything; it returns nothing to deliver afterwards.
func (sub *subscription) purgeLocked() []*subMsg {
	all := sub.allLocked()
	for _, sm := range all {
		sm.holder = false
		sub.freeLocked(sm)
	}
	sub.resetLocked()
	return all
}

// allLocked lists every message the subscription holds.
func (sub *subscription) allLocked() []*subMsg {
	var all []*subMsg
	add := func(sm *subMsg) { all = append(all, sm) }
	sub.ready.each(add)
	sub.redeliver.each(add)
	sub.acked.each(add)
	for _, sm := range sub.timers {
		add(sm)
	}
	for _, ks := range sub.keys {
		ks.pending.each(add)
	}
	return all
}

func (sub *subscription) resetLocked() {
	sub.ready.reset()
	sub.redeliver.reset()
	sub.acked.reset()
	sub.timers = nil
	sub.outstanding = map[string]*subMsg{}
	sub.keys = map[string]*keyState{}
	for st := range sub.streams {
		st.outMsgs, st.outBytes = 0, 0
	}
}

// seekLocked makes the held messages for which unacked says so
// unacknowledged, in publish order, and every other one acknowledged; extra
// messages the subscription no longer holds (from a snapshot) are taken in
// again if its filter accepts them.
func (sub *subscription) seekLocked(now time.Time, unacked func(*message) bool, extra []*message) {
	s := sub.srv
	all := sub.allLocked()
	sub.resetLocked()
	held := make(map[uint64]bool, len(all))
	for _, sm := range all {
		held[sm.m.seq] = true
	}
	for _, m := range extra {
		if held[m.seq] || (sub.filter != nil && !sub.filter.match(m.pm.Attributes)) {
			continue
		}
		m.refs.Add(1)
		sm := &subMsg{m: m, hidx: -1, state: stQueued}
		all = append(all, sm)
		if s.store != nil {
			sub.ops = append(sub.ops, subMsgPut(sub.name, m.seq, false))
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].m.seq < all[j].m.seq })
	for _, sm := range all {
		wasAcked := sm.state == stAcked
		sm.hidx, sm.st, sm.holder, sm.ackID = -1, nil, false, ""
		switch {
		case sub.expired(sm, now):
			sub.freeLocked(sm)
		case !unacked(sm.m):
			if wasAcked {
				sub.acked.push(sm)
			} else {
				sub.ackLocked(sm)
			}
		default:
			sm.state = stQueued
			sub.ready.push(sm)
			if wasAcked && s.store != nil {
				sub.ops = append(sub.ops, subMsgPut(sub.name, sm.m.seq, false))
			}
		}
	}
	sub.signalLocked()
}
