package stock

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestRestoreRecent runs 40 days of random events over a few keys through
// the ledger rules as the stream would, stores the stream's rows, and checks
// the bounded restore: it replays only the adjustments of each key's dedup
// window, and each restored key has the stream's on-hand, severity and
// newest event time, judges every stored event and every unseen one, of
// any age, as the stream's ledger would, and goes on exactly like it for
// new events.
func TestRestoreRecent(t *testing.T) {
	// The restore must not depend on the age of the data: the same history
	// ending 1 day, 9 days, 30 days and 400 days ago restores alike.
	for _, age := range []time.Duration{24 * time.Hour, 9 * 24 * time.Hour, 30 * 24 * time.Hour, 400 * 24 * time.Hour} {
		t.Run(fmt.Sprintf("%dd", age/(24*time.Hour)), func(t *testing.T) {
			testRestoreRecent(t, clock.Now().Add(-age).Truncate(time.Minute))
		})
	}
}

func testRestoreRecent(t *testing.T, now time.Time) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := now.Add(-40 * 24 * time.Hour)
	horizon := 3 * 24 * time.Hour
	th := ledger.NewThresholds(10)
	keys := []event.Key{{SKU: "A", LocationID: "L1"}, {SKU: "B", LocationID: "L1"}, {SKU: "C", LocationID: "L2"}, {SKU: "D", LocationID: "L2"}}
	ref, err := newReference(th, start.UnixMicro(), []snapshotItem{{SKU: "A", LocationID: "L1", OnHand: 40},
		{SKU: "D", LocationID: "L2", OnHand: 15}}, nil).Data()
	if err != nil {
		t.Fatal(err)
	}
	truth := map[event.Key]*ledger.State{}
	var events []event.Adjustment
	var adjs []warehouse.AdjustmentRow
	var levels []warehouse.StockLevelRow
	rng := rand.New(rand.NewPCG(7, 11))
	proc := now.Add(-40 * 24 * time.Hour)
	for i := range 1500 {
		k := keys[rng.IntN(len(keys))]
		if k.SKU == "D" && i > 200 {
			continue // D goes quiet long before the others' window
		}
		at := start.Add(time.Duration(i) * 38 * time.Minute).Add(-time.Duration(rng.IntN(48)) * time.Hour) // late by up to 2 days
		a := event.Adjustment{EventID: fmt.Sprintf("e%d", i), SKU: k.SKU, LocationID: k.LocationID, EventTime: at.UnixMicro()}
		switch r := rng.IntN(10); {
		case r == 0:
			a.Reason, a.Quantity = event.Counted, int64(rng.IntN(60))
		case r < 4:
			a.Reason, a.Quantity = event.Received, int64(1+rng.IntN(20))
		default:
			a.Reason, a.Quantity = event.Sold, -int64(1+rng.IntN(8))
		}
		if rng.IntN(20) == 0 && len(events) > 0 { // a redelivery
			a = events[rng.IntN(len(events))]
		}
		events = append(events, a)
		s := truth[k]
		if s == nil {
			s = ref.Initial(k, th.Lookup(k))
			truth[k] = s
		}
		res := s.Apply(&a, th.Lookup(k), horizon)
		proc = proc.Add(time.Second)
		rec := &eventRecord{Adj: a, MessageID: "m-" + a.EventID}
		if res.Outcome == ledger.TooLate {
			continue
		}
		adjs = append(adjs, adjustmentRow(rec, res.Outcome, proc))
		if res.Changed() {
			levels = append(levels, stockLevelRow(&a, res, th.Lookup(k), s.Severity, proc))
		}
	}
	if err := l.WriteAll(ctx, warehouse.Rows(levels), warehouse.Rows(adjs)); err != nil {
		t.Fatal(err)
	}

	items, st, err := restoreRecent(ctx, dir, ref, horizon)
	if err != nil {
		t.Fatal(err)
	}
	// Each key's window follows its own newest event, not the clock.
	fromOf := map[event.Key]int64{}
	for k, s := range truth {
		fromOf[k] = windowStart(s.MaxTime, horizon).UnixMicro()
	}
	inWindow := 0
	for _, r := range adjs {
		k := event.Key{SKU: r.SKU, LocationID: r.LocationID}
		if r.EventTime.UnixMicro() >= fromOf[k] && r.Status != warehouse.StatusDuplicate {
			inWindow++
		}
	}
	if st.Rows != inWindow || inWindow == 0 || inWindow >= len(adjs)/2 {
		t.Errorf("replayed %d adjustments, want the %d of the keys' windows (of %d stored)", st.Rows, inWindow, len(adjs))
	}
	if st.Mismatches != 0 {
		t.Errorf("%d mismatches", st.Mismatches)
	}
	restored := map[event.Key]*ledger.State{}
	for _, it := range items {
		var s ledger.State
		if err := s.UnmarshalBinary(it.State); err != nil {
			t.Fatal(err)
		}
		restored[event.Key{SKU: it.SKU, LocationID: it.LocationID}] = &s
	}
	for _, k := range keys {
		want, got := truth[k], restored[k]
		if got == nil {
			t.Errorf("%v not restored", k)
			continue
		}
		if got.OnHand != want.OnHand || got.Severity != want.Severity || got.MaxTime != want.MaxTime {
			t.Errorf("%v: on-hand %d %v newest %v, want %d %v %v", k, got.OnHand, got.Severity, time.UnixMicro(got.MaxTime).UTC(),
				want.OnHand, want.Severity, time.UnixMicro(want.MaxTime).UTC())
		}
	}
	// sameVerdict: the restored ledger judges an event as the stream's
	// would: applied or not alike, with the same on-hand. It may remember an
	// id a little longer (the ledger sweeps ids lazily, and the restore
	// keeps a whole day more), so DUPLICATE may stand for SUPERSEDED or
	// TOO_LATE, none of them applied.
	sameVerdict := func(what string, a event.Adjustment, want, got ledger.Result) {
		t.Helper()
		if got.Outcome == want.Outcome && got.OnHand == want.OnHand {
			return
		}
		if got.Outcome == ledger.Duplicate && want.Outcome != ledger.Applied && got.OnHand == want.OnHand {
			return
		}
		t.Errorf("%s %s of %v at %v: %v on-hand %d after restore, want %v on-hand %d", what, a.EventID, a.Key(),
			time.UnixMicro(a.EventTime).UTC(), got.Outcome, got.OnHand, want.Outcome, want.OnHand)
	}
	// Every stored event, delivered again, at any age.
	for _, a := range events {
		k := a.Key()
		sameVerdict("stored", a, truth[k].Clone().Apply(&a, th.Lookup(k), horizon), restored[k].Clone().Apply(&a, th.Lookup(k), horizon))
	}
	// Unseen events at the edges of each key's horizon: inside it they are
	// applied, outside it refused or superseded, as without the restart.
	for i, k := range keys {
		maxT := truth[k].MaxTime
		for j, at := range []int64{maxT - horizon.Microseconds() + time.Hour.Microseconds(), maxT - horizon.Microseconds() - time.Hour.Microseconds(),
			maxT - 2*horizon.Microseconds(), maxT - 1} {
			for _, r := range []struct {
				reason event.Reason
				qty    int64
			}{{event.Sold, -2}, {event.Received, 5}, {event.Counted, 7}} {
				a := event.Adjustment{EventID: fmt.Sprintf("late-%d-%d-%v", i, j, r.reason), SKU: k.SKU, LocationID: k.LocationID,
					Reason: r.reason, Quantity: r.qty, EventTime: at}
				sameVerdict("unseen", a, truth[k].Clone().Apply(&a, th.Lookup(k), horizon), restored[k].Clone().Apply(&a, th.Lookup(k), horizon))
			}
		}
	}
	// New events: the restored ledgers go on like the stream's.
	for i, k := range keys {
		for j, a := range []event.Adjustment{
			{Reason: event.Sold, Quantity: -3, EventTime: now.UnixMicro()},
			{Reason: event.Received, Quantity: 9, EventTime: now.Add(-time.Hour).UnixMicro()},
			{Reason: event.Counted, Quantity: 12, EventTime: now.Add(-2 * time.Hour).UnixMicro()},
			{Reason: event.Sold, Quantity: -1, EventTime: now.Add(time.Hour).UnixMicro()},
		} {
			a.EventID, a.SKU, a.LocationID = fmt.Sprintf("new-%d-%d", i, j), k.SKU, k.LocationID
			w := truth[k].Apply(&a, th.Lookup(k), horizon)
			g := restored[k].Apply(&a, th.Lookup(k), horizon)
			if w != g {
				t.Errorf("%v new event %s: %+v after restore, want %+v", k, a.EventID, g, w)
			}
		}
	}
}
