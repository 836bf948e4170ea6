package pubsubio

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Leases. The Pub/Sub source pulls and commit.Write acks, after the message
// has crossed the job's stages and been stored: seconds later on a busy
// machine, and more than the subscription's ack deadline on an overloaded
// one. A message whose deadline passes is delivered again while the first
// copy is still in the job. That is harmless for the stock (the ledger sees
// a duplicate) but it is wasted work that slows the job further, and each
// extra delivery counts towards the subscription's max delivery attempts,
// after which Pub/Sub forwards the message to the dead-letter topic without
// the job ever storing it. (Under load, a job without leases spent most of
// its work on redeliveries; figures: docs/benchmarks.md#figures-behind-the-code.)
//
// So, as the client library's Receive does, a leaseKeeper in the source's
// process keeps the messages it pulled: every third of the ack deadline it
// extends the deadline of each message not yet acked, until commit.Write
// acks it (Flight.Stored) or MaxExtension has passed since the pull. A
// killed job stops extending, so its messages come back one ack deadline
// later, as before. Releasing works across DoFns because Prism runs the
// source and the sink in one process, and both find the job's Flight; on
// Dataflow the native source, whose leases the service keeps, is used
// instead.

// leaseKeeper extends the ack deadlines of the messages one source pulled.
type leaseKeeper struct {
	flight       *Flight
	client       *pubsub.Client
	subscription string
	deadline     time.Duration // what each extension sets
	maxExtension time.Duration

	now    func() time.Time
	active atomic.Int64 // unix nanos of the source's last call (touch)
	mu     sync.Mutex
	held   map[string]time.Time // ack id -> pulled at
	stop   chan struct{}
}

// startLeases starts a keeper that extends to deadline (rounded up to whole
// seconds, at least 10 s, at most 600 s) every deadline/3.
func startLeases(fl *Flight, client *pubsub.Client, subscription string, deadline, maxExtension time.Duration) *leaseKeeper {
	k := newLeaseKeeper(fl, client, subscription, deadline, maxExtension)
	go k.run()
	return k
}

// newLeaseKeeper registers a keeper that extends only when renew is called.
func newLeaseKeeper(fl *Flight, client *pubsub.Client, subscription string, deadline, maxExtension time.Duration) *leaseKeeper {
	deadline = min(max(deadline.Round(time.Second), 10*time.Second), 600*time.Second)
	k := &leaseKeeper{client: client, subscription: subscription, deadline: deadline, maxExtension: maxExtension,
		now: time.Now, held: map[string]time.Time{}, stop: make(chan struct{})}
	k.flight = fl
	fl.addKeeper(k)
	k.touch()
	return k
}

// touch tells the keeper its source is running. A source that has not run
// for two deadlines belongs to a job that was cancelled in this process (or
// is stuck): its keeper lets the leases lapse, so that the messages go to
// whoever pulls next rather than wait for MaxExtension.
func (k *leaseKeeper) touch() { k.active.Store(k.now().UnixNano()) }

// hold starts keeping the leases of acks, pulled now.
func (k *leaseKeeper) hold(acks []string) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range acks {
		k.held[id] = now
	}
}

// holding returns how many leases k keeps.
func (k *leaseKeeper) holding() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.held)
}

// close stops extending; the messages still held come back after their
// deadline.
func (k *leaseKeeper) close() {
	k.flight.removeKeeper(k)
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
}

// release stops extending the deadlines of acks (acked, or given up on).
func (k *leaseKeeper) release(acks []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range acks {
		delete(k.held, id)
	}
}

func (k *leaseKeeper) run() {
	t := time.NewTicker(k.deadline / 3)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), k.deadline/3)
		if err := k.renew(ctx); err != nil {
			// The next tick tries again; a message whose deadline passes
			// meanwhile is delivered again and dropped as a duplicate.
			slog.Warn("pubsub source: extending ack deadlines failed", "subscription", k.subscription, "err", err)
		}
		cancel()
	}
}

// renew extends the deadline of every message held, and forgets those held
// for longer than maxExtension, or all of them if the source has stopped.
func (k *leaseKeeper) renew(ctx context.Context) error {
	ids := k.due(k.now())
	if len(ids) == 0 {
		return nil
	}
	if err := k.extend(ctx, ids); err != nil {
		return fmt.Errorf("%d messages: %w", len(ids), err)
	}
	return nil
}

// due returns the ack ids to extend now, and forgets those held for longer
// than maxExtension, or all if the source has stopped.
func (k *leaseKeeper) due(now time.Time) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if idle := now.Sub(time.Unix(0, k.active.Load())); idle > 2*k.deadline && len(k.held) > 0 {
		slog.Warn("pubsub source: the source has stopped; letting its leases lapse so Pub/Sub delivers them again",
			"subscription", k.subscription, "messages", len(k.held), "idle", idle.Round(time.Second))
		clear(k.held)
		return nil
	}
	ids := make([]string, 0, len(k.held))
	expired := 0
	for id, pulled := range k.held {
		if now.Sub(pulled) >= k.maxExtension {
			delete(k.held, id)
			expired++
			continue
		}
		ids = append(ids, id)
	}
	if expired > 0 {
		slog.Warn("pubsub source: messages not acked within the max extension; Pub/Sub delivers them again",
			"subscription", k.subscription, "messages", expired, "max_extension", k.maxExtension)
	}
	return ids
}

func (k *leaseKeeper) extend(ctx context.Context, ids []string) error {
	return InAckChunks(ids, func(part []string) error {
		if err := k.client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
			Subscription: k.subscription, AckIds: part, AckDeadlineSeconds: int32(k.deadline / time.Second)}); err != nil {
			return fmt.Errorf("pubsub modify ack deadline: %w", err)
		}
		return nil
	})
}
