package stock

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
)

// TestLedgersStoreRoundTrip runs random events over a few keys through a
// shard's ledgers as the stock DoFn does: after each batch the changed keys
// are written as a delta, or the whole shard as a new base once the deltas
// outgrow it, and now and then the ledgers are read back from the base and
// deltas alone (a cache miss: keys then wait undecoded with their change
// records, and a new base must fold those in). Every key must match a
// ledger that saw the same events in memory only.
func TestLedgersStoreRoundTrip(t *testing.T) {
	const horizon = 20 * time.Minute
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			keys := []event.Key{{SKU: "A", LocationID: "1"}, {SKU: "B", LocationID: "1"}, {SKU: "C", LocationID: "2"}, {SKU: "D", LocationID: "2"}}
			want := map[event.Key]*ledger.State{}
			l := newLedgers()
			var base []byte
			var deltas [][]byte
			deltaBytes, clock := 0, 0
			var seen []string
			for batch := range 120 {
				for i := range 1 + rng.IntN(6) {
					k := keys[rng.IntN(len(keys))]
					if rng.IntN(12) == 0 {
						clock += 10 + rng.IntN(20) // past the horizon: sweeps
					} else if rng.IntN(3) == 0 {
						clock++
					}
					id := fmt.Sprintf("e%d-%d", batch, i)
					if len(seen) > 0 && rng.IntN(6) == 0 {
						id = seen[rng.IntN(len(seen))] // a redelivery
					}
					seen = append(seen, id)
					a := &event.Adjustment{EventID: id, SKU: k.SKU, LocationID: k.LocationID, Reason: event.Received,
						Quantity: int64(rng.IntN(9) - 4), EventTime: t0.Add(time.Duration(clock-rng.IntN(3)) * time.Minute).UnixMicro()}
					if rng.IntN(8) == 0 {
						a.Reason, a.Quantity = event.Counted, int64(rng.IntN(30))
					}
					if want[k] == nil {
						want[k] = &ledger.State{}
					}
					r1 := want[k].Apply(a, 10, horizon)
					st, err := l.Get(k, nil, 10)
					if err != nil {
						t.Fatal(err)
					}
					if r2 := st.Apply(a, 10, horizon); r1 != r2 {
						t.Fatalf("batch %d: %+v: stored ledger %+v, memory %+v", batch, a, r2, r1)
					}
				}
				d, _ := l.AppendChanged(nil)
				if base == nil || deltaBytes+len(d) > len(base) {
					b, err := l.AppendBinary(nil)
					if err != nil {
						t.Fatal(err)
					}
					base, deltas, deltaBytes = b, nil, 0
				} else {
					deltas, deltaBytes = append(deltas, d), deltaBytes+len(d)
				}
				if rng.IntN(5) == 0 { // cache miss: read back what is stored
					var err error
					if l, err = parseLedgers(base); err != nil {
						t.Fatal(err)
					}
					for _, d := range deltas {
						if err := l.ApplyDelta(d); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			for k, w := range want {
				got, err := l.Peek(k)
				if err != nil || got == nil {
					t.Fatalf("%v: %v, %v", k, got, err)
				}
				if got.OnHand != w.OnHand || got.MaxTime != w.MaxTime || got.Severity != w.Severity ||
					!maps.Equal(maps.Collect(got.Seen.All()), maps.Collect(w.Seen.All())) || len(got.Deltas) != len(w.Deltas) {
					t.Errorf("%v: got on hand %d, max %d, %d ids, %d deltas; want %d, %d, %d ids, %d deltas", k,
						got.OnHand, got.MaxTime, got.Seen.Len(), len(got.Deltas), w.OnHand, w.MaxTime, w.Seen.Len(), len(w.Deltas))
				}
			}
		})
	}
}
