package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"

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
// Received = Applied + Superseded + Duplicates + DeadLettered.
type ConsumeStats struct {
	Received, Applied, Superseded, Duplicates, DeadLettered, Alerts int64
}

func (s ConsumeStats) String() string {
	return fmt.Sprintf("received=%d applied=%d superseded=%d duplicates=%d dead_lettered=%d alerts=%d",
		s.Received, s.Applied, s.Superseded, s.Duplicates, s.DeadLettered, s.Alerts)
}

// Store is the consumer's stock: a ledger per key.
type Store struct {
	mu     sync.Mutex
	asOf   time.Time
	states map[event.Key]*ledger.State
	th     *ledger.Thresholds
}

// NewStore starts a store from a snapshot (nil: empty).
func NewStore(start *snapshot.File, th *ledger.Thresholds) *Store {
	s := &Store{states: map[event.Key]*ledger.State{}, th: th}
	if start != nil {
		s.asOf = start.AsOf
		s.states = start.States(th)
	}
	return s
}

// OnHand returns the stock of every key.
func (s *Store) OnHand() map[event.Key]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[event.Key]int64, len(s.states))
	for k, st := range s.states {
		out[k] = st.OnHand
	}
	return out
}

// Below returns the keys whose severity is LOW or OUT, sorted.
func (s *Store) Below() []snapshot.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []snapshot.Item
	for k, st := range s.states {
		if st.Severity == ledger.Low || st.Severity == ledger.Out {
			out = append(out, snapshot.Item{SKU: k.SKU, LocationID: k.LocationID, OnHand: st.OnHand})
		}
	}
	slices.SortFunc(out, func(a, b snapshot.Item) int {
		return cmp.Or(cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.LocationID, b.LocationID))
	})
	return out
}

// Snapshot renders the store as a snapshot file: each item as of its
// newest event, with its whole ledger for an exact restart.
func (s *Store) Snapshot() *snapshot.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &snapshot.File{AsOf: s.asOf}
	if f.AsOf.IsZero() {
		f.AsOf = time.Unix(0, 0).UTC()
	}
	for k, st := range s.states {
		it := snapshot.Item{SKU: k.SKU, LocationID: k.LocationID, OnHand: st.OnHand, State: st.AppendBinary(nil)}
		if st.MaxTime > 0 {
			t := time.UnixMicro(st.MaxTime).UTC()
			it.AsOf = &t
		}
		f.Items = append(f.Items, it)
	}
	return f
}

// Apply applies a valid adjustment.
func (s *Store) apply(a *event.Adjustment, onAlert func(event.Key, *event.Adjustment, ledger.Result, int64)) ledger.Result {
	k := a.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[k]
	if st == nil {
		st = &ledger.State{}
		s.states[k] = st
	}
	th := s.th.Lookup(k)
	r := st.Apply(a, th, 0)
	if r.Alert && onAlert != nil {
		onAlert(k, a, r, th)
	}
	return r
}

// Consume receives adjustments from the subscription and applies them to a
// Store until ctx ends or the subscription stays idle for MaxIdle. It
// returns the store and the counts; ctx ending is a normal stop. Invalid messages are dead-lettered
// with their reason and acked; they never stop the consumer.
func (a *Admin) Consume(ctx context.Context, cfg ConsumeConfig) (*Store, ConsumeStats, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	fallback := event.EncodingJSON
	if f := strings.ToLower(cfg.Format); f == "proto" || f == "protobuf" {
		fallback = event.EncodingBinary
	}
	store := NewStore(cfg.Start, cfg.Thresholds)
	// ctx ending stops receiving; draining, dead-lettering and the last
	// snapshot still run to completion.
	bg := context.WithoutCancel(ctx)
	var (
		received, applied, superseded, dups, dead, alerts atomic.Int64
		last                                              atomic.Int64
		pendMu                                            sync.Mutex
		pending                                           []*pubsub.Message
	)
	last.Store(time.Now().UnixNano())
	dl := newDeadLetters(a, cfg.DeadLetterTopic, event.StageConsume)
	defer dl.stop()

	// flush writes the snapshot, then acks what it includes.
	flush := func() error {
		pendMu.Lock()
		msgs := pending
		pending = nil
		pendMu.Unlock()
		if cfg.SnapshotURI != "" && len(msgs) > 0 {
			if err := snapshot.Write(bg, cfg.SnapshotURI, store.Snapshot()); err != nil {
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
	hold := func(m *pubsub.Message) {
		if cfg.SnapshotURI == "" {
			m.Ack()
			return
		}
		pendMu.Lock()
		pending = append(pending, m)
		pendMu.Unlock()
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := a.Client.Subscriber(cfg.Subscription)
	sub.ReceiveSettings.MaxOutstandingMessages = 20_000
	sub.ReceiveSettings.MaxOutstandingBytes = 256 << 20
	// On shutdown, messages not yet acked are nacked at once, so they come
	// back without waiting out their deadline. Those already applied are in
	// the final snapshot, so their redelivery is a recognised duplicate.
	sub.ReceiveSettings.ShutdownOptions = &pubsub.ShutdownOptions{Behavior: pubsub.ShutdownBehaviorNackImmediately, Timeout: 10 * time.Second}

	onAlert := func(k event.Key, adj *event.Adjustment, r ledger.Result, th int64) {
		alerts.Add(1)
		if cfg.OnAlert != nil {
			cfg.OnAlert(k, adj, r, th)
		}
	}
	receiveDone := make(chan struct{})
	var flushErr error
	var flushWG sync.WaitGroup
	flushWG.Add(1)
	go func() {
		defer flushWG.Done()
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		fast := time.NewTicker(100 * time.Millisecond)
		defer fast.Stop()
		for {
			select {
			case <-receiveDone:
				return
			case <-fast.C:
				if rctx.Err() != nil { // shutting down: ack what callbacks finish
					if err := flush(); err != nil {
						flushErr = err
					}
					continue
				}
				if cfg.MaxIdle > 0 && time.Since(time.Unix(0, last.Load())) > cfg.MaxIdle {
					cancel()
				}
				pendMu.Lock()
				n := len(pending)
				pendMu.Unlock()
				if n >= 10_000 {
					if err := flush(); err != nil {
						cfg.Logger.Error("snapshot write failed; messages nacked", "err", err)
					}
				}
			case <-t.C:
				if err := flush(); err != nil {
					cfg.Logger.Error("snapshot write failed; messages nacked", "err", err)
				}
			}
		}
	}()

	err := sub.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		last.Store(time.Now().UnixNano())
		received.Add(1)
		enc := m.Attributes[event.AttrEncoding]
		if enc == "" {
			enc = fallback
		}
		var adj event.Adjustment
		err := event.Decode(m.Data, enc, &adj)
		if err == nil {
			err = event.Validate(&adj, cfg.Now())
		}
		if err == nil {
			r := store.apply(&adj, onAlert)
			switch r.Outcome {
			case ledger.Applied:
				applied.Add(1)
			case ledger.Superseded:
				superseded.Add(1)
			case ledger.Duplicate:
				dups.Add(1)
			case ledger.TooLate:
				err = &event.Invalid{Code: event.CodeTooLate, Detail: "older than the dedup horizon of its key"}
			}
		}
		if err != nil {
			var inv *event.Invalid
			if !errors.As(err, &inv) {
				inv = &event.Invalid{Code: event.CodeInternal, Detail: err.Error()}
			}
			cfg.Logger.Warn("dead-lettered", "message_id", m.ID, "reason", inv.Code, "detail", inv.Detail)
			r, err := dl.add(bg, m.Data, m.Attributes, inv, "message "+m.ID)
			if err == nil && r != nil {
				_, err = r.Get(bg)
			}
			if err != nil {
				cfg.Logger.Error("dead-letter publish failed; message nacked", "message_id", m.ID, "err", err)
				received.Add(-1)
				m.Nack()
				return
			}
			dead.Add(1)
		}
		hold(m)
	})
	cancel()
	close(receiveDone)
	flushWG.Wait()
	if ferr := flush(); ferr != nil {
		flushErr = ferr
	}
	st := ConsumeStats{Received: received.Load(), Applied: applied.Load(), Superseded: superseded.Load(),
		Duplicates: dups.Load(), DeadLettered: dead.Load(), Alerts: alerts.Load()}
	if err != nil && ctx.Err() == nil {
		return store, st, fmt.Errorf("broker: consume %s: %w", cfg.Subscription, err)
	}
	if flushErr != nil {
		return store, st, fmt.Errorf("broker: consume: %w", flushErr)
	}
	// The final snapshot, even if nothing was pending.
	if cfg.SnapshotURI != "" {
		if err := snapshot.Write(bg, cfg.SnapshotURI, store.Snapshot()); err != nil {
			return store, st, fmt.Errorf("broker: consume: %w", err)
		}
	}
	return store, st, nil
}
