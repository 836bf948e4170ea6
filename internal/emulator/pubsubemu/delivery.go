package pubsubemu

import (
	"container/heap"
	"strconv"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// takeLocked delivers up to maxMsgs messages (and about maxBytes).
func (sub *subscription) takeLocked(maxMsgs int, maxBytes int64, st *streamFlow, now time.Time) []*pb.ReceivedMessage {
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

// nackUnsent returns messages that could not be sent on a broken stream.
func (sub *subscription) nackUnsent(msgs []*pb.ReceivedMessage) {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.AckId
	}
	sub.modAck(ids, 0)
}
