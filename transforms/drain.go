package transforms

import (
	"sync"
	"sync/atomic"
)

// Drain control for a job whose workers run in this process (Prism with
// loopback workers: the local stack). Prism keeps a job's elements in
// memory, so cancelling it loses what the sources emitted but the sinks
// have not written yet, although the source has acked it once its own bundle
// committed. The local stack therefore drains before it cancels: it pauses
// the sources, waits until every message they emitted is in the warehouse
// and acked, then cancels. On Dataflow none of this runs: the service
// checkpoints elements and state, and `gcloud dataflow jobs drain` drains.
var drain struct {
	paused  atomic.Bool
	mu      sync.Mutex
	track   bool
	emitted map[string]bool // message ids emitted by sources in this process
	pending atomic.Int64    // emitted but not yet acked
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
