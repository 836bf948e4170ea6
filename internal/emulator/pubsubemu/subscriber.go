package pubsubemu

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
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

// stream is one StreamingPull connection's flow-control state (guarded by sub.mu).
type stream struct {
	maxMsgs     int
	maxBytes    int64
	outMsgs     int
	outBytes    int64
	ackDeadline time.Duration
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
	streams     map[*stream]struct{}
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
		streams:     map[*stream]struct{}{},
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

// takeLocked delivers up to maxMsgs messages (and about maxBytes).
func (sub *subscription) takeLocked(maxMsgs int, maxBytes int64, st *stream, now time.Time) []*pb.ReceivedMessage {
	deadline := sub.ackDeadline
	if st != nil && st.ackDeadline > 0 {
		deadline = st.ackDeadline
	}
	var out []*pb.ReceivedMessage
	var bytes int64
	sub.takeSeq++
	take := sub.takeSeq
	for len(out) < maxMsgs {
		q := &sub.redeliver
		if q.len() == 0 {
			q = &sub.ready
			if q.len() == 0 {
				break
			}
		}
		sm := q.peek()
		if len(out) > 0 && bytes+sm.m.size > maxBytes {
			break
		}
		q.pop()
		if sub.expired(sm, now) {
			sub.freeLocked(sm)
			continue
		}
		if sub.ordering && sm.m.pm.OrderingKey != "" && !sub.holdKeyLocked(sm, q == &sub.ready, take) {
			continue
		}
		sub.ackSeq++
		sm.ackID = sub.ackPrefix + strconv.FormatUint(sub.ackSeq, 36)
		sm.attempts++
		sm.state = stOutstanding
		sm.due = now.Add(deadline)
		sm.st = st
		heap.Push(&sub.timers, sm)
		sub.outstanding[sm.ackID] = sm
		sub.outPeak = max(sub.outPeak, len(sub.outstanding))
		if st != nil {
			st.outMsgs++
			st.outBytes += sm.m.size
		}
		rm := &pb.ReceivedMessage{AckId: sm.ackID, Message: sm.m.pm}
		if sub.dlTopic != "" {
			rm.DeliveryAttempt = sm.attempts
		}
		out = append(out, rm)
		bytes += sm.m.size
	}
	return out
}

// holdKeyLocked decides whether an ordered message may go in this take: its
// key is free, or already held by this take with nothing of the key waiting
// ahead of it. Otherwise the message waits behind the key.
func (sub *subscription) holdKeyLocked(sm *subMsg, fromReady bool, take uint64) bool {
	k := sm.m.pm.OrderingKey
	ks := sub.keys[k]
	switch {
	case ks == nil:
		ks = &keyState{take: take}
		sub.keys[k] = ks
	case ks.take == 0 && ks.out == 0:
		ks.take = take // released messages of the key, taken by this take
	case ks.take != take:
		sm.state = stKeyWait
		ks.pending.insertSorted(sm)
		return false
	}
	if fromReady && ks.pending.len() > 0 {
		sm.state = stKeyWait
		ks.pending.insertSorted(sm)
		return false
	}
	ks.out++
	sm.holder = true
	return true
}

// detachLocked removes an outstanding message from the ack id map, the timer
// heap and its stream's flow-control counts.
func (sub *subscription) detachLocked(sm *subMsg) {
	delete(sub.outstanding, sm.ackID)
	sm.ackID = ""
	if sm.hidx >= 0 {
		heap.Remove(&sub.timers, sm.hidx)
	}
	if st := sm.st; st != nil {
		st.outMsgs--
		st.outBytes -= sm.m.size
		sm.st = nil
	}
}

func (sub *subscription) ackLocked(sm *subMsg) {
	if sub.retainAcked {
		if sm.holder {
			sub.keyDoneLocked(sm)
		}
		sm.state = stAcked
		sub.acked.push(sm)
		if sub.srv.store != nil {
			sub.ops = append(sub.ops, subMsgPut(sub.name, sm.m.seq, true))
		}
		return
	}
	sub.freeLocked(sm)
}

// nackLocked makes a detached message available again, after the retry
// policy's backoff, or dead-letters it after max delivery attempts.
func (sub *subscription) nackLocked(sm *subMsg, now time.Time) {
	if sub.expired(sm, now) {
		sub.freeLocked(sm)
		return
	}
	if sub.dlTopic != "" && sm.attempts >= sub.maxAttempts {
		sub.dead = append(sub.dead, sm)
		sub.freeLocked(sm)
		return
	}
	if sub.srv.store != nil && sub.dlTopic != "" {
		sub.ops = append(sub.ops, subMsgAttempts(sub.name, sm.m.seq, sm.attempts))
	}
	if sub.retry {
		backoff := sub.minBackoff
		for i := int32(1); i < sm.attempts && backoff < sub.maxBackoff; i++ {
			backoff *= 2
		}
		backoff = min(backoff, sub.maxBackoff)
		if backoff > 0 {
			sm.state = stDelayed
			sm.due = now.Add(backoff)
			heap.Push(&sub.timers, sm) // a holder keeps its key while it waits
			return
		}
	}
	if sm.holder {
		sub.keyReturnLocked(sm)
		return
	}
	sm.state = stQueued
	sub.redeliver.push(sm)
}

// tick expires deadlines and backoffs and drops messages past retention.
func (sub *subscription) tick(now time.Time) {
	sub.mu.Lock()
	if sub.expireLocked(now) {
		sub.signalLocked()
	}
	for sub.ready.len() > 0 && sub.expired(sub.ready.peek(), now) {
		sub.freeLocked(sub.ready.pop())
	}
	for sub.acked.len() > 0 && sub.expired(sub.acked.peek(), now) {
		sub.freeLocked(sub.acked.pop())
	}
	sub.unlock()
}

// expireLocked handles ack deadlines and retry backoffs that are due.
func (sub *subscription) expireLocked(now time.Time) bool {
	changed := false
	for len(sub.timers) > 0 && !sub.timers[0].due.After(now) {
		sm := sub.timers[0]
		switch sm.state {
		case stOutstanding:
			sub.detachLocked(sm)
			sub.nackLocked(sm, now)
		case stDelayed:
			heap.Pop(&sub.timers)
			if sm.holder {
				sub.keyReturnLocked(sm)
				break
			}
			sm.state = stQueued
			sub.redeliver.push(sm)
		default:
			heap.Pop(&sub.timers)
		}
		changed = true
	}
	return changed
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

// Admin RPCs.

func (g *subscriberService) CreateSubscription(_ context.Context, in *pb.Subscription) (*pb.Subscription, error) {
	s := g.s
	if _, _, err := checkName(in.Name, "subscriptions"); err != nil {
		return nil, err
	}
	sp := proto.Clone(in).(*pb.Subscription)
	if err := checkSubscription(sp); err != nil {
		return nil, err
	}
	if sp.AckDeadlineSeconds == 0 {
		sp.AckDeadlineSeconds = int32(defaultAckDeadline / time.Second)
	}
	if sp.MessageRetentionDuration == nil {
		sp.MessageRetentionDuration = durationpb.New(defaultRetention)
	}
	if sp.ExpirationPolicy == nil { // Pub/Sub's default: 31 days without a reader
		sp.ExpirationPolicy = &pb.ExpirationPolicy{Ttl: durationpb.New(defaultExpiration)}
	}
	if sp.DeadLetterPolicy != nil && sp.DeadLetterPolicy.MaxDeliveryAttempts == 0 {
		sp.DeadLetterPolicy.MaxDeliveryAttempts = defaultMaxDeliveryAttempts
	}
	sp.State = pb.Subscription_ACTIVE
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sp.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "subscription %s already exists", sp.Name)
	}
	t, ok := s.topics[sp.Topic]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", sp.Topic)
	}
	if dlp := sp.DeadLetterPolicy; dlp != nil {
		if _, ok := s.topics[dlp.DeadLetterTopic]; !ok {
			return nil, status.Errorf(codes.NotFound, "dead-letter topic %s not found", dlp.DeadLetterTopic)
		}
	}
	sub, err := s.newSubscription(sp)
	if err != nil {
		return nil, err
	}
	if err := s.persistWait(metaPut(kindSub, sp.Name, sp)); err != nil {
		return nil, status.Errorf(codes.Internal, "create subscription: %v", err)
	}
	s.subs[sp.Name] = sub
	t.addSub(sub)
	sub.mu.Lock()
	sub.syncPushLocked()
	sub.mu.Unlock()
	s.log.Debug("subscription created", "subscription", sp.Name, "topic", sp.Topic)
	return proto.Clone(sp).(*pb.Subscription), nil
}

func checkSubscription(sp *pb.Subscription) error {
	if a := sp.AckDeadlineSeconds; a < 0 || a > int32(maxAckDeadline/time.Second) {
		return status.Errorf(codes.InvalidArgument, "ack_deadline_seconds %d outside [1, 600]", a)
	}
	if d := sp.MessageRetentionDuration; d != nil {
		if dd := d.AsDuration(); dd < minRetention || dd > defaultRetention {
			return status.Errorf(codes.InvalidArgument, "message_retention_duration %v outside [10m, 7d]", dd)
		}
	}
	if dlp := sp.DeadLetterPolicy; dlp != nil {
		if _, _, err := checkName(dlp.DeadLetterTopic, "topics"); err != nil {
			return err
		}
		if n := dlp.MaxDeliveryAttempts; n != 0 && (n < 5 || n > 100) {
			return status.Errorf(codes.InvalidArgument, "max_delivery_attempts %d outside [5, 100]", n)
		}
	}
	if rp := sp.RetryPolicy; rp != nil {
		lo, hi := defaultMinBackoff, defaultMaxBackoff
		if rp.MinimumBackoff != nil {
			lo = rp.MinimumBackoff.AsDuration()
		}
		if rp.MaximumBackoff != nil {
			hi = rp.MaximumBackoff.AsDuration()
		}
		if lo < 0 || hi > defaultMaxBackoff || lo > hi {
			return status.Error(codes.InvalidArgument, "retry_policy backoffs must satisfy 0 <= minimum <= maximum <= 600s")
		}
	}
	return checkPushConfig(sp.PushConfig)
}

func (s *Server) findSub(name string) (*subscription, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sub, ok := s.subs[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "subscription %s not found", name)
	}
	return sub, nil
}

func (g *subscriberService) GetSubscription(_ context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	sub, err := g.s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return proto.Clone(sub.proto).(*pb.Subscription), nil
}

func (g *subscriberService) UpdateSubscription(_ context.Context, req *pb.UpdateSubscriptionRequest) (*pb.Subscription, error) {
	s := g.s
	if req.Subscription == nil {
		return nil, status.Error(codes.InvalidArgument, "subscription is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[req.Subscription.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "subscription %s not found", req.Subscription.Name)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	next := proto.Clone(sub.proto).(*pb.Subscription)
	immutable := map[string]bool{"name": true, "topic": true, "enable_message_ordering": true, "filter": true}
	if err := applyMask(next, req.Subscription, req.UpdateMask, immutable); err != nil {
		return nil, err
	}
	if err := checkSubscription(next); err != nil {
		return nil, err
	}
	if next.AckDeadlineSeconds == 0 {
		next.AckDeadlineSeconds = int32(defaultAckDeadline / time.Second)
	}
	if next.MessageRetentionDuration == nil {
		next.MessageRetentionDuration = durationpb.New(defaultRetention)
	}
	if dlp := next.DeadLetterPolicy; dlp != nil {
		if _, ok := s.topics[dlp.DeadLetterTopic]; !ok {
			return nil, status.Errorf(codes.NotFound, "dead-letter topic %s not found", dlp.DeadLetterTopic)
		}
		if dlp.MaxDeliveryAttempts == 0 {
			dlp.MaxDeliveryAttempts = defaultMaxDeliveryAttempts
		}
	}
	if err := s.persistWait(metaPut(kindSub, next.Name, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "update subscription: %v", err)
	}
	sub.configureLocked(next)
	sub.syncPushLocked()
	return proto.Clone(next).(*pb.Subscription), nil
}

func (g *subscriberService) ListSubscriptions(_ context.Context, req *pb.ListSubscriptionsRequest) (*pb.ListSubscriptionsResponse, error) {
	s := g.s
	if err := checkProject(req.Project); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := paginate(namesOf(s.subs, req.Project), req.PageToken, req.PageSize)
	resp := &pb.ListSubscriptionsResponse{NextPageToken: next}
	for _, n := range page {
		sub := s.subs[n]
		sub.mu.Lock()
		resp.Subscriptions = append(resp.Subscriptions, proto.Clone(sub.proto).(*pb.Subscription))
		sub.mu.Unlock()
	}
	return resp, nil
}

func (g *subscriberService) DeleteSubscription(_ context.Context, req *pb.DeleteSubscriptionRequest) (*emptypb.Empty, error) {
	s := g.s
	s.mu.Lock()
	sub, ok := s.subs[req.Subscription]
	if !ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "subscription %s not found", req.Subscription)
	}
	delete(s.subs, req.Subscription)
	t := s.topics[sub.proto.Topic]
	policyOps := s.dropPolicyLocked(req.Subscription)
	s.mu.Unlock()
	if t != nil {
		t.removeSub(sub)
	}
	sub.mu.Lock()
	sub.deleted = true
	sub.syncPushLocked()
	sub.purgeLocked()
	sub.signalLocked()
	ops := append(sub.flushLocked(), metaDelete(kindSub, sub.name), storeOp{kind: opDeleteBucket, bucket: subBucket(sub.name)})
	ops = append(ops, policyOps...)
	sub.mu.Unlock()
	if err := s.persistWait(ops...); err != nil {
		return nil, status.Errorf(codes.Internal, "delete subscription: %v", err)
	}
	return &emptypb.Empty{}, nil
}

// Data-plane RPCs.

func (g *subscriberService) Acknowledge(_ context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	sub, err := g.s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	if err := checkAckRequest(req, req.AckIds); err != nil {
		return nil, err
	}
	_, failed, eod := sub.ackIDs(req.AckIds)
	if err := ackError(eod, failed); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// checkAckRequest enforces the request size limit and rejects malformed ack ids.
func checkAckRequest(req proto.Message, ids []string) error {
	if n := proto.Size(req); n > maxAckRequestBytes {
		return status.Errorf(codes.InvalidArgument, "request of %d bytes exceeds the limit of %d bytes", n, maxAckRequestBytes)
	}
	for _, id := range ids {
		if !wellFormedAckID(id) {
			return status.Errorf(codes.InvalidArgument, "invalid ack id %q", id)
		}
	}
	return nil
}

// wellFormedAckID reports whether id has the shape of the ack ids this
// server hands out (boot id, "-", base-36 sequence), from any boot.
func wellFormedAckID(id string) bool {
	if len(id) < 10 || len(id) > 32 || id[8] != '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case i == 8:
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'g' && c <= 'z' && i > 8:
		default:
			return false
		}
	}
	return true
}

// Exactly-once delivery reports per-ack-id failures the way Pub/Sub does: an
// INVALID_ARGUMENT status carrying an ErrorInfo whose metadata maps each
// failed ack id to its reason, which the client libraries read.
const (
	eodErrorReason    = "EXACTLY_ONCE_ACKID_FAILURE"
	eodErrorDomain    = "pubsub.googleapis.com"
	eodInvalidAckID   = "PERMANENT_FAILURE_INVALID_ACK_ID"
	eodInvalidMessage = "Some acknowledgement ids in the request were invalid. This could be because the acknowledgement ids have expired or the acknowledgement ids were malformed."
)

// ackError builds the exactly-once error for the failed ack ids; nil when
// none failed or the subscription is not exactly-once.
func ackError(eod bool, failed []string) error {
	if !eod || len(failed) == 0 {
		return nil
	}
	md := make(map[string]string, len(failed))
	for _, id := range failed {
		md[id] = eodInvalidAckID
	}
	st, err := status.New(codes.InvalidArgument, eodInvalidMessage).WithDetails(&errdetails.ErrorInfo{
		Reason:   eodErrorReason,
		Domain:   eodErrorDomain,
		Metadata: md,
	})
	if err != nil {
		return status.Errorf(codes.Internal, "ack error details: %v", err)
	}
	return st.Err()
}

// ackIDs acknowledges outstanding messages. With exactly-once delivery an
// ack id whose deadline has passed no longer acknowledges anything; failed
// lists the ack ids that acknowledged nothing (unknown, stale or expired).
func (sub *subscription) ackIDs(ids []string) (acked, failed []string, eod bool) {
	if len(ids) == 0 {
		return nil, nil, false
	}
	sub.mu.Lock()
	eod = sub.exactlyOnce
	var now time.Time
	if eod {
		now = sub.srv.now()
	}
	n := 0
	for _, id := range ids {
		sm := sub.outstanding[id]
		if sm == nil || (eod && !sm.due.After(now)) {
			if sm != nil { // expired, not yet noticed by the ticker
				sub.detachLocked(sm)
				sub.nackLocked(sm, now)
			}
			if eod {
				failed = append(failed, id)
			}
			continue // without exactly-once, stale or unknown ack ids are ignored, as Pub/Sub does
		}
		sub.detachLocked(sm)
		sub.ackLocked(sm)
		if eod {
			acked = append(acked, id)
		}
		n++
	}
	if n > 0 || len(failed) > 0 {
		sub.signalLocked()
	}
	sub.unlock()
	return acked, failed, eod
}

func (g *subscriberService) ModifyAckDeadline(_ context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	sub, err := g.s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	if req.AckDeadlineSeconds < 0 || req.AckDeadlineSeconds > int32(maxAckDeadline/time.Second) {
		return nil, status.Errorf(codes.InvalidArgument, "ack_deadline_seconds %d outside [0, 600]", req.AckDeadlineSeconds)
	}
	if err := checkAckRequest(req, req.AckIds); err != nil {
		return nil, err
	}
	_, failed, eod := sub.modAck(req.AckIds, req.AckDeadlineSeconds)
	if err := ackError(eod, failed); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// modAck sets new deadlines (0 = nack); like ackIDs it reports the ack ids
// that matched no outstanding delivery.
func (sub *subscription) modAck(ids []string, seconds int32) (done, failed []string, eod bool) {
	if len(ids) == 0 {
		return nil, nil, false
	}
	now := sub.srv.now()
	sub.mu.Lock()
	eod = sub.exactlyOnce
	nacked := false
	for _, id := range ids {
		sm := sub.outstanding[id]
		if sm == nil || (eod && !sm.due.After(now)) {
			if sm != nil {
				sub.detachLocked(sm)
				sub.nackLocked(sm, now)
				nacked = true
			}
			if eod {
				failed = append(failed, id)
			}
			continue
		}
		if eod {
			done = append(done, id)
		}
		if seconds == 0 {
			sub.detachLocked(sm)
			sub.nackLocked(sm, now)
			nacked = true
			continue
		}
		sm.due = now.Add(time.Duration(seconds) * time.Second)
		heap.Fix(&sub.timers, sm.hidx)
	}
	if nacked {
		sub.signalLocked()
	}
	sub.unlock()
	return done, failed, eod
}

func (g *subscriberService) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	s := g.s
	sub, err := s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	if req.MaxMessages <= 0 {
		return nil, status.Error(codes.InvalidArgument, "max_messages must be positive")
	}
	limit := int(min(req.MaxMessages, maxMessagesPerResp))
	var timeout <-chan time.Time
	for {
		sub.mu.Lock()
		if sub.deleted {
			sub.mu.Unlock()
			return nil, status.Errorf(codes.NotFound, "subscription %s not found", req.Subscription)
		}
		if sub.proto.Detached {
			sub.mu.Unlock()
			return nil, status.Errorf(codes.FailedPrecondition, "subscription %s is detached", req.Subscription)
		}
		now := s.now()
		sub.expireLocked(now)
		msgs := sub.takeLocked(limit, maxBytesPerResp, nil, now)
		ch := sub.notify
		sub.unlock()
		if len(msgs) > 0 || req.ReturnImmediately { //nolint:staticcheck // deprecated but honoured
			return &pb.PullResponse{ReceivedMessages: msgs}, nil
		}
		if timeout == nil {
			timeout = time.After(pullWait(ctx))
		}
		select {
		case <-ch:
		case <-timeout:
			return &pb.PullResponse{}, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.stop:
			return &pb.PullResponse{}, nil
		}
	}
}

// pullWait bounds a long poll: up to pullWaitMax, returning an empty response
// before the caller's deadline rather than letting it expire.
func pullWait(ctx context.Context) time.Duration {
	wait := pullWaitMax
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		margin := min(200*time.Millisecond, left/2)
		wait = min(wait, left-margin)
	}
	return max(wait, 0)
}

func (g *subscriberService) StreamingPull(ss pb.Subscriber_StreamingPullServer) error {
	s := g.s
	first, err := ss.Recv()
	if err != nil {
		return err
	}
	sub, err := s.findSub(first.Subscription)
	if err != nil {
		return err
	}
	sub.mu.Lock()
	detached := sub.proto.Detached
	sub.mu.Unlock()
	if detached {
		return status.Errorf(codes.FailedPrecondition, "subscription %s is detached", sub.name)
	}
	if d := first.StreamAckDeadlineSeconds; d < 0 || d > int32(maxAckDeadline/time.Second) {
		return status.Errorf(codes.InvalidArgument, "stream_ack_deadline_seconds %d outside [10, 600]", d)
	}
	st := &stream{
		maxMsgs:     int(first.MaxOutstandingMessages),
		maxBytes:    first.MaxOutstandingBytes,
		ackDeadline: time.Duration(first.StreamAckDeadlineSeconds) * time.Second,
	}
	sub.mu.Lock()
	sub.streams[st] = struct{}{}
	sub.mu.Unlock()
	defer func() {
		sub.mu.Lock()
		delete(sub.streams, st)
		sub.mu.Unlock()
	}()
	// With exactly-once delivery, acks and modacks sent on the stream are
	// confirmed on it; the receive goroutine hands confirmations to the
	// sending loop, the stream's only sender.
	confirms := make(chan *pb.StreamingPullResponse, 64)
	handle := func(req *pb.StreamingPullRequest) bool {
		acked, failed, eod := sub.ackIDs(req.AckIds)
		var mdone, mfailed []string
		for i, id := range req.ModifyDeadlineAckIds {
			if i < len(req.ModifyDeadlineSeconds) {
				d, f, e := sub.modAck([]string{id}, req.ModifyDeadlineSeconds[i])
				mdone, mfailed, eod = append(mdone, d...), append(mfailed, f...), eod || e
			}
		}
		if d := req.StreamAckDeadlineSeconds; d > 0 {
			sub.mu.Lock()
			st.ackDeadline = time.Duration(d) * time.Second
			sub.mu.Unlock()
		}
		if eod && len(req.AckIds)+len(req.ModifyDeadlineAckIds) > 0 {
			resp := &pb.StreamingPullResponse{}
			if len(req.AckIds) > 0 {
				resp.AcknowledgeConfirmation = &pb.StreamingPullResponse_AcknowledgeConfirmation{AckIds: acked, InvalidAckIds: failed}
			}
			if len(req.ModifyDeadlineAckIds) > 0 {
				resp.ModifyAckDeadlineConfirmation = &pb.StreamingPullResponse_ModifyAckDeadlineConfirmation{AckIds: mdone, InvalidAckIds: mfailed}
			}
			select {
			case confirms <- resp:
			case <-ss.Context().Done():
			}
		}
		return len(req.AckIds) == 0 && len(req.ModifyDeadlineAckIds) == 0
	}
	handle(first)

	ping := make(chan struct{}, 1)
	recvDone := make(chan error, 1)
	go func() {
		for {
			req, err := ss.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			if handle(req) && first.ProtocolVersion >= 1 {
				select {
				case ping <- struct{}{}:
				default:
				}
			}
		}
	}()

	ctx := ss.Context()
	for {
		select { // confirmations first, so a busy stream cannot starve them
		case resp := <-confirms:
			sub.mu.Lock()
			resp.SubscriptionProperties = sub.props
			sub.mu.Unlock()
			if err := ss.Send(resp); err != nil {
				return err
			}
		default:
		}
		sub.mu.Lock()
		if sub.deleted {
			sub.mu.Unlock()
			return status.Errorf(codes.NotFound, "subscription %s not found", sub.name)
		}
		var msgs []*pb.ReceivedMessage
		room := maxMessagesPerResp
		if st.maxMsgs > 0 {
			room = min(room, st.maxMsgs-st.outMsgs)
		}
		byteRoom := int64(maxBytesPerResp)
		if st.maxBytes > 0 {
			byteRoom = min(byteRoom, st.maxBytes-st.outBytes)
		}
		if room > 0 && byteRoom > 0 {
			msgs = sub.takeLocked(room, byteRoom, st, s.now())
		}
		ch, props := sub.notify, sub.props
		sub.unlock()
		if len(msgs) > 0 {
			if err := ss.Send(&pb.StreamingPullResponse{ReceivedMessages: msgs, SubscriptionProperties: props}); err != nil {
				sub.nackUnsent(msgs)
				return err
			}
			continue
		}
		select {
		case <-ch:
		case resp := <-confirms:
			resp.SubscriptionProperties = props
			if err := ss.Send(resp); err != nil {
				return err
			}
		case <-ping:
			if err := ss.Send(&pb.StreamingPullResponse{SubscriptionProperties: props}); err != nil {
				return err
			}
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stop:
			return status.Error(codes.Unavailable, "server shutting down")
		}
	}
}

// nackUnsent returns messages that could not be sent on a broken stream.
func (sub *subscription) nackUnsent(msgs []*pb.ReceivedMessage) {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.AckId
	}
	sub.modAck(ids, 0)
}

func (g *subscriberService) Seek(_ context.Context, req *pb.SeekRequest) (*pb.SeekResponse, error) {
	s := g.s
	sub, err := s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	var t time.Time
	switch target := req.Target.(type) {
	case *pb.SeekRequest_Time:
		t = target.Time.AsTime()
	case *pb.SeekRequest_Snapshot:
		if err := s.seekSnapshot(sub, target.Snapshot); err != nil {
			return nil, err
		}
		return &pb.SeekResponse{}, nil
	default:
		return nil, status.Error(codes.InvalidArgument, "seek needs a time or a snapshot")
	}
	sub.mu.Lock()
	sub.seekLocked(s.now(), func(m *message) bool { return !m.publish.Before(t) }, nil)
	sub.unlock()
	return &pb.SeekResponse{}, nil
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

func (g *subscriberService) ModifyPushConfig(_ context.Context, req *pb.ModifyPushConfigRequest) (*emptypb.Empty, error) {
	s := g.s
	if err := checkPushConfig(req.PushConfig); err != nil {
		return nil, err
	}
	sub, err := s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	next := proto.Clone(sub.proto).(*pb.Subscription)
	next.PushConfig = proto.Clone(req.GetPushConfig()).(*pb.PushConfig) // empty = pull
	if req.PushConfig == nil {
		next.PushConfig = &pb.PushConfig{}
	}
	if err := s.persistWait(metaPut(kindSub, next.Name, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "modify push config: %v", err)
	}
	sub.proto = next
	sub.syncPushLocked()
	return &emptypb.Empty{}, nil
}
