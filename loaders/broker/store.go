package broker

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// Store is the consumer's stock: a ledger per key.
type Store struct {
	mu     sync.Mutex
	asOf   time.Time
	states map[event.Key]*ledger.State
	th     *ledger.Thresholds
}

// newStore starts a store from a snapshot (nil: empty).
func newStore(start *snapshot.File, th *ledger.Thresholds) *Store {
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

// snapshot renders the store as a snapshot file: each item as of its
// newest event, with its whole ledger for an exact restart.
func (s *Store) snapshot() *snapshot.File {
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

// apply applies a valid adjustment.
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
