package pubsubio

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inventory-events/inventory/internal/registry"
)

// Flight is what one job's Pub/Sub sources in this process have in flight:
// the messages they emitted that are not yet stored and acked, the lease
// keepers that extend those messages' ack deadlines, and whether the
// sources are paused.
//
// The code that runs a job owns its Flight: it creates one (NewFlight),
// passes its ID in the job's options (PullOptions.Flight and the commit
// sink's options), drains it before it cancels the job, and closes it. The
// job's DoFns find it by ID (LookupFlight) in a registry.Table, which says
// why an ID is how a process-level object reaches them. Its memory is
// bounded by what is in flight: an ack id is forgotten once its message is
// stored.
//
// Why drain: cancelling a Prism job drops the elements it holds between
// stages. Nothing is lost by that, since a message is acked only once the
// commit sink has stored what it caused, but the dropped messages come back
// only after their ack deadline. A local run therefore drains before it
// cancels: it pauses the sources, waits until every message they emitted
// is stored and acked, then cancels, so the next start has nothing to wait
// for. On Dataflow none of this runs: `gcloud dataflow jobs drain` drains.
type Flight struct {
	id      string
	paused  atomic.Bool
	pulling atomic.Int64 // sources between a pull and its emit

	mu      sync.Mutex
	pending map[string]int // ack ids emitted and not yet stored: their messages' sizes
	bytes   int            // the sum of pending's sizes
	keepers map[*leaseKeeper]struct{}

	commits commitLog // flight_commits.go
}

// flights are the Flights of this process by ID, until Close.
var flights registry.Table[*Flight]

// defaultFlight serves jobs whose options name no Flight (a job run on its
// own, as cmd/stream on Prism does): their sources and sinks in this
// process share it.
var defaultFlight = newFlight("")

// NewFlight returns a new Flight, registered in this process under a
// fresh ID until Close.
func NewFlight() *Flight {
	f := newFlight(registry.NewID("flight-"))
	flights.Add(f.id, f)
	return f
}

func newFlight(id string) *Flight {
	return &Flight{id: id, pending: map[string]int{}, keepers: map[*leaseKeeper]struct{}{}}
}

// LookupFlight returns the Flight registered under id, or the process's
// default Flight if id is "". It fails for an unknown id: a job whose
// options name a Flight must run in the process that created it.
func LookupFlight(id string) (*Flight, error) {
	if id == "" {
		return defaultFlight, nil
	}
	f, ok := flights.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("pubsub source: flight %q is not registered in this process (jobs naming a flight need in-process workers)", id)
	}
	return f, nil
}

// ID is what a job's options name the Flight by.
func (f *Flight) ID() string { return f.id }

// Close unregisters the Flight. Call it once its job has ended.
func (f *Flight) Close() { flights.Remove(f.id) }

// Pause stops (true) or resumes (false) pulling in the Flight's sources. A
// paused source still acks what it emitted before.
func (f *Flight) Pause(p bool) { f.paused.Store(p) }

// unacked returns how many messages the sources emitted that are not yet
// stored and acked.
func (f *Flight) unacked() int {
	n, _ := f.outstanding()
	return n
}

// outstanding returns how many messages the sources emitted that are not
// yet stored and acked, and their bytes of payload and attributes
// (event.MessageSize).
func (f *Flight) outstanding() (messages, bytes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending), f.bytes
}

// Drain pauses the sources and waits until every message they emitted is
// stored (the commit sink stores, then acks, then calls Stored). Cancelling
// the job after it returns loses nothing. It gives up when ctx ends;
// Pause(false) resumes.
func (f *Flight) Drain(ctx context.Context) error {
	f.Pause(true)
	for {
		// In this order: a pull that began before the pause emits after
		// it, and its batch must be counted, or the cancel drops it.
		pulling := f.pulling.Load()
		unacked := f.unacked()
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

// emitted records the ack ids of a batch a source emits.
func (f *Flight) emitted(b *Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range b.Messages {
		m := &b.Messages[i]
		if _, dup := f.pending[m.AckID]; m.AckID != "" && !dup {
			n := m.size()
			f.pending[m.AckID] = n
			f.bytes += n
		}
	}
}

// Stored forgets the ack ids of messages whose outputs are stored and
// acked, and stops extending their leases.
func (f *Flight) Stored(acks []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range acks {
		if n, ok := f.pending[id]; ok {
			f.bytes -= n
			delete(f.pending, id)
		}
	}
	for k := range f.keepers {
		k.release(acks)
	}
}

func (f *Flight) addKeeper(k *leaseKeeper) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keepers[k] = struct{}{}
}

func (f *Flight) removeKeeper(k *leaseKeeper) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keepers, k)
}
