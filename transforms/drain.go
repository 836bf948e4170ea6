package transforms

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// Drain control for a job whose workers run in this process (Prism with
// loopback workers: the local stack). Cancelling a Prism job drops the
// elements it holds between stages. Nothing is lost by that, since a message
// is acked only once WriteCommits has stored what it caused, but the
// dropped messages come back only after their ack deadline. The local stack
// therefore drains before it cancels: it pauses the sources, waits until
// every message they emitted is in the warehouse and acked, then cancels, so
// the next start has nothing to wait for. On Dataflow none of this runs:
// `gcloud dataflow jobs drain` drains.
var drain struct {
	paused  atomic.Bool
	mu      sync.Mutex
	track   bool
	emitted map[string]bool // message ids emitted by sources in this process
	pending atomic.Int64    // emitted but not yet acked
	pulling atomic.Int64    // sources between a pull and its emit
}

// TrackSources makes the sources in this process remember the ids of the
// messages they emit, for Emitted. Call it before the job starts.
func TrackSources() {
	drain.mu.Lock()
	defer drain.mu.Unlock()
	drain.track = true
	if drain.emitted == nil {
		drain.emitted = map[string]bool{}
	}
}

// PauseSources stops (true) or resumes (false) pulling in this process's
// sources. A paused source still acks what it emitted before.
func PauseSources(p bool) { drain.paused.Store(p) }

// Unacked returns how many emitted messages the sources have not acked yet.
func Unacked() int64 { return drain.pending.Load() }

// Emitted returns the ids of the messages the sources emitted since
// TrackSources.
func Emitted() []string {
	drain.mu.Lock()
	defer drain.mu.Unlock()
	out := make([]string, 0, len(drain.emitted))
	for id := range drain.emitted {
		out = append(out, id)
	}
	return out
}

func noteEmitted(b *Batch) {
	drain.pending.Add(int64(len(b.Messages)))
	drain.mu.Lock()
	defer drain.mu.Unlock()
	if !drain.track {
		return
	}
	for _, m := range b.Messages {
		drain.emitted[m.ID] = true
	}
}

func noteAcked(n int) { drain.pending.Add(-int64(n)) }

// DrainSources pauses the sources in this process and waits until every
// message they emitted since TrackSources is in the local warehouse wh (as
// an adjustment or a dead letter) and acked. Cancelling the job after it
// returns loses nothing. It gives up when ctx ends; PauseSources(false)
// resumes.
func DrainSources(ctx context.Context, wh string) error {
	PauseSources(true)
	for {
		// In this order: a pull that began before the pause emits after
		// it, and its batch must be counted, or the cancel drops it.
		pulling := drain.pulling.Load()
		unacked := Unacked()
		missing, err := notInWarehouse(ctx, wh, Emitted())
		if err != nil {
			return err
		}
		if pulling == 0 && unacked == 0 && missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d messages not in the warehouse, %d not acked, %d pulls under way: %w",
				missing, unacked, pulling, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// notInWarehouse counts the message ids that have no adjustment, dead
// letter or threshold change in the warehouse.
func notInWarehouse(ctx context.Context, wh string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := warehouse.QueryRows(ctx, wh, `SELECT DISTINCT message_id FROM adjustments
		UNION SELECT DISTINCT message_id FROM dead_letters
		UNION SELECT DISTINCT message_id FROM threshold_changes`)
	if err != nil {
		return 0, fmt.Errorf("drain: %w", err)
	}
	have := make(map[string]bool, len(rows))
	for _, r := range rows {
		if id, ok := r["message_id"].(string); ok {
			have[id] = true
		}
	}
	missing := 0
	for _, id := range ids {
		if !have[id] {
			missing++
		}
	}
	return missing, nil
}
