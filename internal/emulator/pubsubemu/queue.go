package pubsubemu

import "time"

// subMsg is one message's state in one subscription.
type subMsg struct {
	m        *message
	attempts int32
	state    uint8
	holder   bool // holds its ordering key (ordered subscriptions)
	hidx     int  // index in the timer heap, -1 when absent
	ackID    string
	due      time.Time   // ack deadline (outstanding) or end of retry backoff (delayed)
	st       *streamFlow // stream it was delivered on, for flow control
}

const (
	stQueued      uint8 = iota // in ready or redeliver
	stOutstanding              // delivered, waiting for ack
	stDelayed                  // nacked, waiting out the retry policy's backoff
	stKeyWait                  // ordered: waiting behind its key's outstanding messages
	stAcked                    // acked, retained for seek (retain_acked_messages)
	stGone                     // freed
)

// deque is a ring buffer FIFO.
type deque struct {
	buf  []*subMsg
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) grow() {
	size := max(16, 2*len(d.buf))
	nb := make([]*subMsg, size)
	for i := 0; i < d.n; i++ {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque) push(x *subMsg) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = x
	d.n++
}

// insertSorted inserts x in message order (publish sequence); the queue is
// already in that order. Appending is the common case.
func (d *deque) insertSorted(x *subMsg) {
	d.push(x)
	for i := d.n - 1; i > 0; i-- {
		a, b := (d.head+i-1)%len(d.buf), (d.head+i)%len(d.buf)
		if d.buf[a].m.seq <= d.buf[b].m.seq {
			return
		}
		d.buf[a], d.buf[b] = d.buf[b], d.buf[a]
	}
}

func (d *deque) peek() *subMsg {
	if d.n == 0 {
		return nil
	}
	return d.buf[d.head]
}

func (d *deque) pop() *subMsg {
	if d.n == 0 {
		return nil
	}
	x := d.buf[d.head]
	d.buf[d.head] = nil
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
		if len(d.buf) > 1024 {
			d.buf = nil // give memory back after a drained backlog
		}
	}
	return x
}

func (d *deque) each(f func(*subMsg)) {
	for i := 0; i < d.n; i++ {
		f(d.buf[(d.head+i)%len(d.buf)])
	}
}

func (d *deque) reset() { *d = deque{} }

// timerHeap is a min-heap of subMsgs by due time (container/heap.Interface).
type timerHeap []*subMsg

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *timerHeap) Push(x any) {
	sm := x.(*subMsg)
	sm.hidx = len(*h)
	*h = append(*h, sm)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	sm := old[n-1]
	old[n-1] = nil
	sm.hidx = -1
	*h = old[:n-1]
	return sm
}
