package pubsubsrc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Drain control for a job whose workers run in this process (Prism with
// loopback workers: the local stack). Cancelling a Prism job drops the
// elements it holds between stages. Nothing is lost by that, since a message
// is acked only once WriteCommits has stored what it caused, but the
// dropped messages come back only after their ack deadline. The local stack
// therefore drains before it cancels: it pauses the sources, waits until
// every message they emitted is stored and acked, then cancels, so
// the next start has nothing to wait for. On Dataflow none of this runs:
// `gcloud dataflow jobs drain` drains.
var drain struct {
	paused  atomic.Bool
	mu      sync.Mutex
	pending map[string]bool // ack ids emitted by sources in this process and not yet stored
	pulling atomic.Int64    // sources between a pull and its emit
}

// PauseSources stops (true) or resumes (false) pulling in this process's
// sources. A paused source still acks what it emitted before.
func PauseSources(p bool) { drain.paused.Store(p) }

// Unacked returns how many messages the sources emitted that are not yet
// stored and acked. Memory is bounded by what is in flight: an id is
// forgotten once its message is stored.
func Unacked() int {
	drain.mu.Lock()
	defer drain.mu.Unlock()
	return len(drain.pending)
}

func noteEmitted(b *Batch) {
	drain.mu.Lock()
	defer drain.mu.Unlock()
	if drain.pending == nil {
		drain.pending = map[string]bool{}
	}
	for _, m := range b.Messages {
		if m.AckID != "" {
			drain.pending[m.AckID] = true
		}
	}
}

// NoteStored forgets the ack ids of messages whose outputs are stored.
func NoteStored(acks []string) {
	drain.mu.Lock()
	defer drain.mu.Unlock()
	for _, id := range acks {
		delete(drain.pending, id)
	}
}

// DrainSources pauses the sources in this process and waits until every
// message they emitted is stored (WriteCommits stores, then acks, then
// forgets it). Cancelling the job after it returns loses nothing. It gives
// up when ctx ends; PauseSources(false) resumes.
func DrainSources(ctx context.Context) error {
	PauseSources(true)
	for {
		// In this order: a pull that began before the pause emits after
		// it, and its batch must be counted, or the cancel drops it.
		pulling := drain.pulling.Load()
		unacked := Unacked()
		if pulling == 0 && unacked == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d messages not stored, %d pulls under way: %w", unacked, pulling, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
