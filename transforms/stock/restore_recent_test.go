package stock

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestRestoreRecent runs 40 days of random events over a few keys through
// the ledger rules as the stream would, stores the stream's rows, and checks
// the bounded restore: it reads only the adjustments of the dedup window,
// and each restored key has the stream's on-hand and severity, knows every
// id of the window (a redelivery is a duplicate), never applies an event
// from before the window, and goes on exactly like the stream's ledger for
// new events.
func TestRestoreRecent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	start := now.Add(-40 * 24 * time.Hour)
	horizon := 3 * 24 * time.Hour
	th := ledger.NewThresholds(10)
	keys := []event.Key{{SKU: "A", LocationID: "L1"}, {SKU: "B", LocationID: "L1"}, {SKU: "C", LocationID: "L2"}, {SKU: "D", LocationID: "L2"}}
	ref, err := newReference(th, start.UnixMicro(), []SnapshotItem{{SKU: "A", LocationID: "L1", OnHand: 40},
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
			continue // D goes quiet long before the window
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
		rec := &Record{Adj: a, MessageID: "m-" + a.EventID}
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

	items, st, err := restoreRecent(ctx, dir, ref, horizon, now)
	if err != nil {
		t.Fatal(err)
	}
	from := now.Add(-horizon - 24*time.Hour).Truncate(24 * time.Hour)
	inWindow := 0
	for _, r := range adjs {
		if !r.EventTime.Before(from) && r.Status != warehouse.StatusDuplicate {
			inWindow++
		}
	}
	if st.Rows != inWindow || inWindow == 0 || inWindow >= len(adjs)/2 {
		t.Errorf("read %d adjustments, want the %d of the window (of %d stored)", st.Rows, inWindow, len(adjs))
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
		if got.OnHand != want.OnHand || got.Severity != want.Severity {
			t.Errorf("%v: on-hand %d %v, want %d %v", k, got.OnHand, got.Severity, want.OnHand, want.Severity)
		}
	}
	// Every stored event, delivered again: inside the window the restored
	// ledger judges it as the stream's would: applied or not alike, with the
	// same on-hand, a duplicate wherever the stream still knows the id (it
	// may remember an id a little longer: the ledger sweeps ids lazily, so
	// DUPLICATE may stand for SUPERSEDED or TOO_LATE, none applied); before
	// the window it is never applied.
	for _, a := range events {
		k := a.Key()
		want := truth[k].Clone().Apply(&a, th.Lookup(k), horizon)
		got := restored[k].Clone().Apply(&a, th.Lookup(k), horizon)
		switch {
		case a.EventTime >= from.UnixMicro() && got.Outcome != want.Outcome &&
			(got.Outcome != ledger.Duplicate || want.Outcome == ledger.Applied || got.OnHand != want.OnHand):
			t.Errorf("%s of the window (%v): %v after restore, want %v", a.EventID, time.UnixMicro(a.EventTime).UTC(), got.Outcome, want.Outcome)
		case got.Outcome == ledger.Applied:
			t.Errorf("%s from before the window (%v): applied again after restore", a.EventID, time.UnixMicro(a.EventTime).UTC())
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
