package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// ConsumeConfig says how to consume adjustments.
type ConsumeConfig struct {
	Subscription    string
	DeadLetterTopic string
	// Format is the encoding assumed when a message has no
	// googclient_schemaencoding attribute: "json" or "proto".
	Format     string
	Thresholds *ledger.Thresholds
	// Start is the starting stock; nil starts empty.
	Start *snapshot.File
	// SnapshotURI is where the stock is written, atomically, every
	// Interval and at the end ("" writes nothing). Messages are acked only
	// after the snapshot that includes them is written, so a crash means
	// redelivery (absorbed by dedup), never loss.
	SnapshotURI string
	Interval    time.Duration
	// MaxIdle stops the consumer once no message came for this long (0: run
	// until ctx ends).
	MaxIdle time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
	// OnAlert, if set, is called for every alert, under the store's lock.
	OnAlert func(k event.Key, a *event.Adjustment, r ledger.Result, threshold int64)
}

// ConsumeStats counts what a consumer did:
// Received = Applied + Superseded + Duplicates + DeadLettered + Dropped.
// Dropped are invalid messages whose dead letter Pub/Sub refused for good
// (see Consume): logged with their size and hash, and acked.
type ConsumeStats struct {
	Received, Applied, Superseded, Duplicates, DeadLettered, Dropped, Alerts int64
}

func (s ConsumeStats) String() string {
	out := fmt.Sprintf("received=%d applied=%d superseded=%d duplicates=%d dead_lettered=%d alerts=%d",
		s.Received, s.Applied, s.Superseded, s.Duplicates, s.DeadLettered, s.Alerts)
	if s.Dropped > 0 {
		out += fmt.Sprintf(" dropped=%d", s.Dropped)
	}
	return out
}

// Consumer keeps stock from a subscription: it applies each adjustment to
// a Store, dead-letters the invalid ones, and acks messages once a
// snapshot holds them. Make one with NewConsumer.
type Consumer struct {
	admin *Admin
	cfg   ConsumeConfig
	// fallback is the encoding of messages without an encoding attribute.
	fallback string
}

// NewConsumer returns a Consumer of cfg over a's client; cfg's unset fields
// take their defaults (Interval: 5 s, Now: clock.Now, Logger: discarded).
func NewConsumer(a *Admin, cfg ConsumeConfig) *Consumer {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fallback := event.EncodingJSON
	if f := strings.ToLower(cfg.Format); f == "proto" || f == "protobuf" {
		fallback = event.EncodingBinary
	}
	return &Consumer{admin: a, cfg: cfg, fallback: fallback}
}

// Consume receives adjustments from the subscription and applies them to a
// Store until ctx ends or the subscription stays idle for MaxIdle. It
// returns the store and the counts; ctx ending is a normal stop. Invalid messages are dead-lettered
// with their reason and acked; they never stop the consumer. One whose dead
// letter Pub/Sub refuses for good (invalid or too large: a retry cannot
// change that) is logged with its size and SHA-256, acked and counted as
// Dropped rather than redelivered forever; one whose dead letter fails
// otherwise is nacked and comes back.
func (c *Consumer) Consume(ctx context.Context) (*Store, ConsumeStats, error) {
	run := &consumeRun{
		Consumer: c,
		store:    newStore(c.cfg.Start, c.cfg.Thresholds),
		// ctx ending stops receiving; draining, dead-lettering and the
		// last snapshot still run to completion.
		bg: context.WithoutCancel(ctx),
		dl: newDeadLetters(c.admin, c.cfg.DeadLetterTopic, event.StageConsume),
	}
	run.last.Store(time.Now().UnixNano())
	defer run.dl.stop()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	receiveDone := make(chan struct{})
	var flushWG sync.WaitGroup
	flushWG.Add(1)
	go func() {
		defer flushWG.Done()
		run.flushLoop(rctx, cancel, receiveDone)
	}()
	err := c.subscriber().Receive(rctx, run.receive)
	cancel()
	close(receiveDone)
	flushWG.Wait()
	if ferr := run.flush(); ferr != nil {
		run.flushErr = ferr
	}
	st, err := run.finish(ctx, err)
	return run.store, st, err
}

// subscriber returns the subscription's subscriber, set for a consumer
// that holds messages until a snapshot includes them.
func (c *Consumer) subscriber() *pubsub.Subscriber {
	sub := c.admin.Client.Subscriber(c.cfg.Subscription)
	sub.ReceiveSettings.MaxOutstandingMessages = 20_000
	sub.ReceiveSettings.MaxOutstandingBytes = 256 << 20
	// On shutdown, messages not yet acked are nacked at once, so they come
	// back without waiting out their deadline. Those already applied are in
	// the final snapshot, so their redelivery is a recognised duplicate.
	sub.ReceiveSettings.ShutdownOptions = &pubsub.ShutdownOptions{Behavior: pubsub.ShutdownBehaviorNackImmediately, Timeout: 10 * time.Second}
	return sub
}

// consumeRun is the state of one Consume: the store, the counts, and the
// messages held until the next snapshot.
type consumeRun struct {
	*Consumer
	store *Store
	bg    context.Context // outlives ctx: for draining and the last snapshot
	dl    *deadLetters

	received, applied, superseded, dups, dead, dropped, alerts atomic.Int64
	last                                                       atomic.Int64 // UnixNano of the last message

	pendMu  sync.Mutex
	pending []*pubsub.Message // applied, not yet in a snapshot

	flushErr error // set by the flush loop while shutting down, read after it ends
}

// flushLoop writes snapshots every Interval, and sooner when 10,000
// messages are held; it stops the receive (cancel) after MaxIdle without a
// message. Once rctx ends it keeps flushing what the callbacks finish,
// until done is closed.
func (run *consumeRun) flushLoop(rctx context.Context, cancel context.CancelFunc, done <-chan struct{}) {
	t := time.NewTicker(run.cfg.Interval)
	defer t.Stop()
	fast := time.NewTicker(100 * time.Millisecond)
	defer fast.Stop()
	for {
		select {
		case <-done:
			return
		case <-fast.C:
			if rctx.Err() != nil { // shutting down: ack what callbacks finish
				if err := run.flush(); err != nil {
					run.flushErr = err
				}
				continue
			}
			if run.cfg.MaxIdle > 0 && time.Since(time.Unix(0, run.last.Load())) > run.cfg.MaxIdle {
				cancel()
			}
			run.pendMu.Lock()
			n := len(run.pending)
			run.pendMu.Unlock()
			if n >= 10_000 {
				run.flushLogged()
			}
		case <-t.C:
			run.flushLogged()
		}
	}
}

// flushLogged flushes; a failure is logged, since the messages it nacks
// come back.
func (run *consumeRun) flushLogged() {
	if err := run.flush(); err != nil {
		run.cfg.Logger.Error("snapshot write failed; messages nacked", "err", err)
	}
}

// flush writes the snapshot, then acks what it includes; if the write
// fails, it nacks them instead.
func (run *consumeRun) flush() error {
	run.pendMu.Lock()
	msgs := run.pending
	run.pending = nil
	run.pendMu.Unlock()
	if run.cfg.SnapshotURI != "" && len(msgs) > 0 {
		if err := snapshot.Write(run.bg, run.cfg.SnapshotURI, run.store.snapshot()); err != nil {
			for _, m := range msgs {
				m.Nack()
			}
			return err
		}
	}
	for _, m := range msgs {
		m.Ack()
	}
	return nil
}

// hold keeps m until the next snapshot includes it (acks it at once when
// no snapshot is written).
func (run *consumeRun) hold(m *pubsub.Message) {
	if run.cfg.SnapshotURI == "" {
		m.Ack()
		return
	}
	run.pendMu.Lock()
	run.pending = append(run.pending, m)
	run.pendMu.Unlock()
}

// receive is the subscriber's callback: it applies m, or dead-letters it
// when it is invalid, then holds it for the next snapshot. A message whose
// dead letter cannot be published now is nacked and not counted; one whose
// dead letter Pub/Sub refuses for good is counted as dropped and held.
func (run *consumeRun) receive(_ context.Context, m *pubsub.Message) {
	run.last.Store(time.Now().UnixNano())
	run.received.Add(1)
	if err := run.apply(m); err != nil {
		switch run.deadLetter(m, err) {
		case dlRetry:
			run.received.Add(-1)
			m.Nack()
			return
		case dlDropped:
			run.dropped.Add(1)
		default:
			run.dead.Add(1)
		}
	}
	run.hold(m)
}

// apply decodes, validates and applies m to the store, and counts the
// outcome. An error says why m is invalid.
func (run *consumeRun) apply(m *pubsub.Message) error {
	enc := m.Attributes[event.AttrEncoding]
	if enc == "" {
		enc = run.fallback
	}
	var adj event.Adjustment
	if err := event.Decode(m.Data, enc, &adj); err != nil {
		return err
	}
	if err := event.Validate(&adj, run.cfg.Now()); err != nil {
		return err
	}
	switch run.store.apply(&adj, run.onAlert).Outcome {
	case ledger.Applied:
		run.applied.Add(1)
	case ledger.Superseded:
		run.superseded.Add(1)
	case ledger.Duplicate:
		run.dups.Add(1)
	case ledger.TooLate:
		return &event.Invalid{Code: event.CodeTooLate, Detail: "older than the dedup horizon of its key"}
	}
	return nil
}

// What became of a dead letter.
type dlOutcome int

const (
	dlPublished dlOutcome = iota // published, or there is no dead-letter topic
	dlRetry                      // not published now: nack, it comes back
	dlDropped                    // refused for good: logged, the message acked
)

// deadLetter publishes m's dead letter with the reason in err (an
// *event.Invalid, or else an internal error) and waits for it.
func (run *consumeRun) deadLetter(m *pubsub.Message, err error) dlOutcome {
	var inv *event.Invalid
	if !errors.As(err, &inv) {
		inv = &event.Invalid{Code: event.CodeInternal, Detail: err.Error()}
	}
	run.cfg.Logger.Warn("dead-lettered", "message_id", m.ID, "reason", inv.Code, "detail", cutDetail(inv.Detail))
	r, err := run.dl.add(run.bg, m.Data, m.Attributes, inv, "message "+m.ID)
	if err == nil && r != nil {
		_, err = r.Get(run.bg)
	}
	switch {
	case err == nil:
		return dlPublished
	case refused(err):
		_, size, sum := event.BoundPayload(m.Data)
		run.cfg.Logger.Error("dead letter refused by Pub/Sub; message acked without it", "message_id", m.ID,
			"reason", inv.Code, "payload_bytes", size, "payload_sha256", sum, "attributes", len(m.Attributes), "err", err)
		return dlDropped
	}
	run.cfg.Logger.Error("dead-letter publish failed; message nacked", "message_id", m.ID, "err", err)
	return dlRetry
}

// cutDetail bounds an error detail for a log line (a decoder's error may
// quote its input).
func cutDetail(s string) string {
	if len(s) > event.MaxDeadLetterError {
		return s[:event.MaxDeadLetterError] + "..."
	}
	return s
}

// onAlert counts an alert and passes it to the configured OnAlert.
func (run *consumeRun) onAlert(k event.Key, adj *event.Adjustment, r ledger.Result, th int64) {
	run.alerts.Add(1)
	if run.cfg.OnAlert != nil {
		run.cfg.OnAlert(k, adj, r, th)
	}
}

// finish returns the counts and the run's error: receiveErr unless ctx
// ended, else a failed flush, else a failed final snapshot, which is
// written even if nothing was pending.
func (run *consumeRun) finish(ctx context.Context, receiveErr error) (ConsumeStats, error) {
	st := ConsumeStats{Received: run.received.Load(), Applied: run.applied.Load(), Superseded: run.superseded.Load(),
		Duplicates: run.dups.Load(), DeadLettered: run.dead.Load(), Dropped: run.dropped.Load(), Alerts: run.alerts.Load()}
	if receiveErr != nil && ctx.Err() == nil {
		return st, fmt.Errorf("broker: consume %s: %w", run.cfg.Subscription, receiveErr)
	}
	if run.flushErr != nil {
		return st, fmt.Errorf("broker: consume: %w", run.flushErr)
	}
	if run.cfg.SnapshotURI != "" {
		if err := snapshot.Write(run.bg, run.cfg.SnapshotURI, run.store.snapshot()); err != nil {
			return st, fmt.Errorf("broker: consume: %w", err)
		}
	}
	return st, nil
}
