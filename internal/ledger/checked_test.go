package ledger

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
)

// TestApplyChecked: events refused as TooLate and then given to
// ApplyChecked leave the same on-hand as one ledger that never forgets
// (a horizon of a century), whatever the order; a redelivery of a checked
// event is a duplicate; a late count stays refused.
func TestApplyChecked(t *testing.T) {
	const day = 24 * time.Hour
	h := 3 * day
	compared, total := 0, 0
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var events []event.Adjustment
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 300 {
			a := event.Adjustment{EventID: fmt.Sprintf("e%d", i), SKU: "S", LocationID: "L",
				EventTime: t0.Add(time.Duration(rng.IntN(20*24)) * time.Hour).UnixMicro()}
			if i > 0 && rng.IntN(15) == 0 {
				a.Reason, a.Quantity = event.Counted, int64(rng.IntN(100))
			} else if rng.IntN(2) == 0 {
				a.Reason, a.Quantity = event.Received, int64(1+rng.IntN(9))
			} else {
				a.Reason, a.Quantity = event.Sold, -int64(1+rng.IntN(9))
			}
			events = append(events, a)
		}
		never := FromSnapshot(50, t0.Add(-time.Hour).UnixMicro(), 10)
		s := FromSnapshot(50, t0.Add(-time.Hour).UnixMicro(), 10)
		var late []event.Adjustment
		for i := range events {
			never.Apply(&events[i], 10, 100*365*day)
			if s.Apply(&events[i], 10, h).Outcome == TooLate {
				late = append(late, events[i])
			}
		}
		lateCounts := 0
		for i := range late {
			a := &late[i]
			r := s.ApplyChecked(a, 10, h)
			if a.Reason == event.Counted {
				if r.Outcome == TooLate {
					lateCounts++
				} else if r.Outcome != Superseded {
					t.Fatalf("seed %d: a late count was %v, want it refused or superseded", seed, r.Outcome)
				}
				continue
			}
			if r.Outcome != Applied && r.Outcome != Superseded {
				t.Fatalf("seed %d: checked %s: %v", seed, a.EventID, r.Outcome)
			}
			if again := s.ApplyChecked(a, 10, h); again.Outcome == Applied || again.Changed() ||
				(r.Outcome == Applied && again.Outcome != Duplicate) {
				t.Fatalf("seed %d: %s (%v) given again: %v, want it not applied twice", seed, a.EventID, r.Outcome, again.Outcome)
			}
		}
		if lateCounts == 0 && s.OnHand != never.OnHand {
			t.Errorf("seed %d: on-hand %d after %d checked late events, want %d as with no horizon", seed, s.OnHand, len(late), never.OnHand)
		}
		if lateCounts == 0 {
			compared++
		}
		total += len(late)
	}
	if compared < 10 || total < 100 {
		t.Fatalf("only %d seeds without a late count, %d late events: the test tests too little", compared, total)
	}
}
