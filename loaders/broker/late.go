package broker

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// Late events: an event older than its key's dedup horizon (8 days of event
// time behind the key's newest event) is dead-lettered too_late by the
// streaming job, because its ledger no longer remembers the ids that far
// back and so cannot tell a new event from a redelivery. The warehouse
// does remember them: ReplayLate checks each too_late dead letter against
// every adjustment it holds and publishes the new ones again, marked
// event.AttrLateChecked, and the job then judges them as a replay of the
// whole history would (ledger.State.ApplyChecked): superseded if a count
// covers them, else applied.

// lateDeadLettersSQL reads the too_late dead letters, oldest first.
const lateDeadLettersSQL = `SELECT message_id, payload, payload_bytes FROM dead_letters
WHERE reason = 'too_late'
ORDER BY dead_lettered_at, message_id`

// storedIDsSQL reads the id of every event the stream accepted.
const storedIDsSQL = `SELECT DISTINCT sku, location_id, event_id FROM adjustments
WHERE status IN ('APPLIED', 'SUPERSEDED')`

// LateConfig says where ReplayLate reads and publishes.
type LateConfig struct {
	Warehouse string // local directory or bq://PROJECT.DATASET
	Topic     string // the adjustments topic (DefaultNames().Topic)
	DryRun    bool   // check and count, publish nothing
}

// LateStats says what ReplayLate did. DeadLetters = Stored + Repeated +
// Unreadable + Counts + len(Events).
type LateStats struct {
	DeadLetters int // too_late dead letters in the warehouse
	Counts      int // late COUNTED events: left alone (ledger.State.ApplyChecked)
	Stored      int // whose event the warehouse now holds (replayed before, or delivered again in time)
	Repeated    int // the same event dead-lettered more than once: replayed once
	Unreadable  int // whose payload is cut or does not decode: left alone
	Published   int // published again, marked checked
	// Events are those published (or, in a dry run, that would be).
	Events []LateEvent
}

// LateEvent is an event of a key.
type LateEvent struct {
	Key     event.Key
	EventID string
}

// ReplayLate publishes again, marked checked, every too_late dead letter
// of the warehouse whose event it does not hold. Running it again is safe:
// an event the job has stored since is skipped, and the job's ledger takes
// a second copy of a checked event as a duplicate.
func (a *Admin) ReplayLate(ctx context.Context, cfg LateConfig) (LateStats, error) {
	var st LateStats
	if cfg.Topic == "" {
		cfg.Topic = DefaultNames().Topic
	}
	dead, err := warehouse.QueryRows(ctx, cfg.Warehouse, lateDeadLettersSQL)
	if err != nil {
		return st, fmt.Errorf("broker: replay late: read dead_letters: %w", err)
	}
	st.DeadLetters = len(dead)
	if len(dead) == 0 {
		return st, nil
	}
	stored, err := storedEvents(ctx, cfg.Warehouse)
	if err != nil {
		return st, fmt.Errorf("broker: replay late: read adjustments: %w", err)
	}
	encoding, err := a.topicEncoding(ctx, cfg.Topic)
	if err != nil {
		return st, fmt.Errorf("broker: replay late: %w", err)
	}
	var pub *pubsub.Publisher
	if !cfg.DryRun {
		pub = a.Client.Publisher(cfg.Topic)
		defer pub.Stop()
	}
	var results []*pubsub.PublishResult
	seen := map[LateEvent]bool{}
	for _, r := range dead {
		msgID, _ := r["message_id"].(string)
		payload, _ := r["payload"].([]byte)
		if size, ok := r["payload_bytes"].(int64); ok && size > int64(len(payload)) {
			st.Unreadable++ // cut to fit the table: not the whole event
			continue
		}
		var adj event.Adjustment
		if err := event.Decode(payload, event.EncodingJSON, &adj); err != nil {
			st.Unreadable++
			continue
		}
		k := LateEvent{adj.Key(), adj.EventID}
		if !st.replayable(k, &adj, stored, seen) {
			continue
		}
		seen[k] = true
		st.Events = append(st.Events, k)
		if cfg.DryRun {
			continue
		}
		data, err := encodeAs(encoding, &adj)
		if err != nil {
			return st, fmt.Errorf("broker: replay late: encode %s: %w", adj.EventID, err)
		}
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: map[string]string{
			event.AttrEventTime:   event.FormatTime(adj.EventTime),
			event.AttrEventID:     adj.EventID,
			event.AttrLateChecked: msgID,
			"source":              adj.Source,
		}}))
	}
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			return st, fmt.Errorf("broker: replay late: publish to %s (%d of %d published): %w", cfg.Topic, st.Published, len(results), err)
		}
		st.Published++
	}
	return st, nil
}

// storedEvents returns the events the adjustments table holds.
func storedEvents(ctx context.Context, wh string) (map[LateEvent]bool, error) {
	rows, err := warehouse.QueryRows(ctx, wh, storedIDsSQL)
	if err != nil {
		return nil, err
	}
	stored := make(map[LateEvent]bool, len(rows))
	for _, r := range rows {
		sku, _ := r["sku"].(string)
		loc, _ := r["location_id"].(string)
		id, _ := r["event_id"].(string)
		stored[LateEvent{event.Key{SKU: sku, LocationID: loc}, id}] = true
	}
	return stored, nil
}

// replayable says whether the late event k is to be replayed: not stored
// since, not already seen in this run, not a count (left alone, see
// LateStats.Counts); it counts the others.
func (st *LateStats) replayable(k LateEvent, adj *event.Adjustment, stored, seen map[LateEvent]bool) bool {
	switch {
	case stored[k]:
		st.Stored++
	case seen[k]:
		st.Repeated++
	case adj.Reason == event.Counted:
		st.Counts++
	default:
		return true
	}
	return false
}

// encodeAs encodes adj in a topic's schema encoding (JSON when none is bound).
func encodeAs(encoding string, adj *event.Adjustment) ([]byte, error) {
	if encoding == event.EncodingBinary {
		return event.MarshalBinary(adj)
	}
	return event.MarshalJSON(adj)
}

// WaitLateStored waits until the warehouse holds an adjustment for every
// event ReplayLate published, or the timeout passes; it returns how many
// it holds.
func WaitLateStored(ctx context.Context, wh string, published []LateEvent, timeout time.Duration, progress func(stored, total int)) (int, error) {
	want := map[LateEvent]bool{}
	for _, e := range published {
		want[e] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		rows, err := warehouse.QueryRows(ctx, wh, `SELECT DISTINCT sku, location_id, event_id FROM adjustments`)
		if err != nil {
			return 0, fmt.Errorf("broker: replay late: watch adjustments: %w", err)
		}
		n := 0
		for _, r := range rows {
			sku, _ := r["sku"].(string)
			loc, _ := r["location_id"].(string)
			id, _ := r["event_id"].(string)
			if want[LateEvent{event.Key{SKU: sku, LocationID: loc}, id}] {
				n++
			}
		}
		if progress != nil {
			progress(n, len(want))
		}
		if n >= len(want) || time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
