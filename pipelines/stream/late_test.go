package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/oracle"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// TestReplayLate uploads 15 days of history at once, in random order, as a
// store back from an outage would: Pub/Sub delivers it in any order, so the
// job dead-letters as too_late every event that arrives more than the dedup
// horizon behind its key's newest. `inventory replay-late` (broker.ReplayLate)
// then publishes those again, checked against the warehouse, and the final
// stock equals an independent replay of all the events (the oracle: no
// horizon, no arrival order). A second run publishes nothing.
func TestReplayLate(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	st := newStack(t)
	ctx := context.Background()
	dir := t.TempDir()

	gen := synth.Config{Events: 1200, SKUs: 4, Locations: 2, Seed: 3,
		Start: clock.Now().AddDate(0, 0, -20).UTC().Truncate(time.Hour), Span: 15 * 24 * time.Hour}
	var csvData bytes.Buffer
	if err := synth.Generate(&csvData, gen); err != nil {
		t.Fatal(err)
	}
	// No counts: a late count cannot be applied by the stream (replay-late
	// leaves it alone, see ledger.State.ApplyChecked), and with none the
	// oracle's answer is reachable for every key.
	events := readEvents(t, csvData.Bytes(), func(a *event.Adjustment) bool { return a.Reason != event.Counted })
	rand.New(rand.NewPCG(5, 5)).Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	snap := synth.Snapshot(gen)
	snapPath, thPath := dir+"/state.json", dir+"/thresholds.csv"
	if err := snapshot.Write(ctx, snapPath, snap); err != nil {
		t.Fatal(err)
	}
	var th bytes.Buffer
	if err := synth.WriteThresholds(&th, gen); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(thPath, th.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	cfg := st.config()
	cfg.Snapshot, cfg.Thresholds = snapPath, thPath
	j := startJob(t, cfg)
	defer j.stop(t)
	st.publishEvents(t, events)

	tooLate := func() int64 {
		return queryInt(t, st.warehouse, `SELECT count(*) AS n FROM dead_letters WHERE reason = 'too_late'`)
	}
	waitFor(t, 120*time.Second, "every event stored or dead-lettered", func() (bool, string) {
		n := queryInt(t, st.warehouse, `SELECT count(DISTINCT event_id) AS n FROM adjustments`) + tooLate()
		return n >= int64(len(events)), fmt.Sprintf("%d of %d", n, len(events))
	})
	late := tooLate()
	if late == 0 {
		t.Fatalf("no event was too late: the burst did not reach past the horizon; the test tests nothing")
	}

	res, err := st.admin.ReplayLate(ctx, broker.LateConfig{Warehouse: st.warehouse})
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadLetters != int(late) || len(res.Events) != int(late) || res.Stored+res.Repeated+res.Unreadable+res.Counts != 0 {
		t.Fatalf("replay-late: %+v, want all %d too_late dead letters published again", res, late)
	}
	n, err := broker.WaitLateStored(ctx, st.warehouse, res.Events, 90*time.Second, nil)
	if err != nil || n != len(res.Events) {
		t.Fatalf("%d of %d replayed events stored (%v)", n, len(res.Events), err)
	}

	_, want := oracle.Stock(events, snap)
	waitFor(t, 30*time.Second, "stock equal to the oracle's", func() (bool, string) {
		got, err := finalStock(ctx, st.warehouse)
		if err != nil {
			return false, err.Error()
		}
		diff := 0
		for k, w := range want {
			if got[k] != w {
				diff++
			}
		}
		return diff == 0, fmt.Sprintf("%d of %d keys differ", diff, len(want))
	})
	if n := queryInt(t, st.warehouse, `SELECT count(*) AS n FROM (SELECT event_id FROM adjustments
		WHERE status IN ('APPLIED', 'SUPERSEDED') GROUP BY event_id HAVING count(*) > 1) AS t`); n != 0 {
		t.Errorf("%d events applied more than once", n)
	}

	again, err := st.admin.ReplayLate(ctx, broker.LateConfig{Warehouse: st.warehouse})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Events) != 0 || again.Stored != int(late) {
		t.Errorf("second replay-late: %+v, want every one of the %d already stored", again, late)
	}
	t.Logf("%d events in random order over 15 days: %d too_late, all applied after replay-late; stock equals the oracle's on %d keys",
		len(events), late, len(want))
}

// readEvents parses the valid rows of a CSV that keep says to keep.
func readEvents(t *testing.T, data []byte, keep func(*event.Adjustment) bool) []event.Adjustment {
	t.Helper()
	cr, err := event.NewCSVReader(bytes.NewReader(data), "rows")
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Adjustment
	for {
		var a event.Adjustment
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil || event.Validate(&a, clock.Now()) != nil || !keep(&a) {
			continue
		}
		out = append(out, a)
	}
}

// publishEvents publishes events as JSON, batched by the client (so in no
// particular order).
func (st *stack) publishEvents(t *testing.T, events []event.Adjustment) {
	t.Helper()
	ctx := context.Background()
	pub := st.admin.Client.Publisher("inventory-topic")
	defer pub.Stop()
	results := make([]*pubsub.PublishResult, 0, len(events))
	for i := range events {
		payload, err := event.MarshalJSON(&events[i])
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: payload,
			Attributes: map[string]string{event.AttrEventID: events[i].EventID}}))
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}
