// Package summary holds the nightly job's Beam building blocks: the per-key
// bags of a day's adjustments and opening stock (Part), the combiner that
// replays each key's day through the shared ledger rules (Summarize), and
// the global combiner that gathers the rows and charts of the report.
package summary

import (
	"cmp"
	"slices"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/reports"
)

// Window is the report day: [Start, End) in Unix µs.
type Window struct {
	Start, End int64
}

// Event is one adjustment of a key, as the replay needs it.
type Event struct {
	ID     string
	Time   int64 // Unix µs
	Reason event.Reason
	Qty    int64
}

// Item is everything known about one key for the report day.
type Item struct {
	SKU, LocationID string
	// HasOpening: the key's stock was OpeningOnHand at OpeningAt (Unix µs),
	// from the previous day's summary or the snapshot.
	HasOpening    bool
	OpeningOnHand int64
	OpeningAt     int64
	// HasStreaming: the streaming job's latest on-hand of the key before the
	// end of the day was StreamingOnHand.
	HasStreaming    bool
	StreamingOnHand int64
	// HasHistory: the key has daily_summary rows in the 27 days before the
	// report date; it sold Sold6 units (positive) in the last 6 of them and
	// Sold27 in all, and has a row for HistoryDays of them.
	HasHistory    bool
	Sold6, Sold27 int64
	HistoryDays   int64
	Events        []Event
}

// Key returns the stock key of it.
func (it *Item) Key() event.Key { return event.Key{SKU: it.SKU, LocationID: it.LocationID} }

// merge adds o's facts to it.
func (it *Item) merge(o *Item) {
	if o.HasOpening && (!it.HasOpening || o.OpeningAt > it.OpeningAt) {
		it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, o.OpeningOnHand, o.OpeningAt
	}
	if o.HasStreaming {
		it.HasStreaming, it.StreamingOnHand = true, o.StreamingOnHand
	}
	if o.HasHistory {
		it.HasHistory = true
		it.Sold6 += o.Sold6
		it.Sold27 += o.Sold27
		it.HistoryDays += o.HistoryDays
	}
	it.Events = append(it.Events, o.Events...)
}

// Summary is the replay of one key's day: its report row, and its on-hand
// over the day when the key was affected (see reports.Affected).
type Summary struct {
	Row    reports.Row
	Series *reports.Series
	// Duplicates and Superseded count the day's events that changed nothing.
	Duplicates, Superseded int64
}

// OnlyHistory reports whether all that is known of it is its history: a key
// that had summaries before but is in neither the opening stock, the day's
// events nor the streaming stock. It gets no row.
func (it *Item) OnlyHistory() bool {
	return !it.HasOpening && !it.HasStreaming && len(it.Events) == 0
}

// Summarize1 replays the events of it, in event-time order (ties by
// event_id), through a ledger.State seeded with the key's opening stock,
// with the key's threshold. Events before the window bring the opening up
// to the start of the day; events at or after its end are ignored. The
// trends add the day's units sold to the key's history (see Item).
func Summarize1(it *Item, w Window, threshold int64) Summary {
	evs := sortedEvents(it.Events)
	d := newDayReplay(it, threshold)
	i := d.open(evs, w.Start)
	for ; i < len(evs) && evs[i].Time < w.End; i++ {
		d.add(&evs[i])
	}
	d.close(w.End)
	row := &d.s.Row
	addTrends(row, it)
	reconcile(row, it)
	if reports.Affected(row) {
		d.s.Series = &reports.Series{SKU: it.SKU, LocationID: it.LocationID, Threshold: threshold, Points: d.points}
	}
	return d.s
}

// sortedEvents returns a copy of evs in event-time order, ties by id.
func sortedEvents(evs []Event) []Event {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.ID, b.ID))
	})
	return evs
}

// dayReplay is the replay of one key's day: the ledger, the summary being
// built, and what the row's out-of-stock time and the chart need.
type dayReplay struct {
	st        *ledger.State
	adj       event.Adjustment // reused for each event
	threshold int64
	known     bool // on-hand is known (not a key never seen)
	seenAny   bool // the minimum on-hand has a value
	s         Summary
	outSince  int64 // start of the current out-of-stock spell, -1: none
	outMicros int64 // out of stock so far
	points    []reports.Point
}

// newDayReplay starts the replay of it from its opening stock, if known.
func newDayReplay(it *Item, threshold int64) *dayReplay {
	d := &dayReplay{
		st: &ledger.State{}, threshold: threshold, known: it.HasOpening, outSince: -1,
		adj: event.Adjustment{SKU: it.SKU, LocationID: it.LocationID},
		s:   Summary{Row: reports.Row{SKU: it.SKU, LocationID: it.LocationID, Threshold: threshold}},
	}
	if it.HasOpening {
		d.st = ledger.FromSnapshot(it.OpeningOnHand, it.OpeningAt, threshold)
	}
	return d
}

// apply applies e to the key's ledger.
func (d *dayReplay) apply(e *Event) ledger.Result {
	d.adj.EventID, d.adj.EventTime, d.adj.Reason, d.adj.Quantity = e.ID, e.Time, e.Reason, e.Qty
	return d.st.Apply(&d.adj, d.threshold, 0)
}

// open applies the events of evs before start, which bring the opening
// stock up to the start of the day, and opens the day's row and chart
// there. It returns the index of the first event of the day.
func (d *dayReplay) open(evs []Event, start int64) int {
	i := 0
	for ; i < len(evs) && evs[i].Time < start; i++ {
		if r := d.apply(&evs[i]); r.Outcome == ledger.Applied {
			d.known = true
		}
	}
	row := &d.s.Row
	row.OpeningOnHand = d.st.OnHand
	row.MinOnHand = d.st.OnHand
	if d.known && d.st.OnHand <= 0 {
		d.outSince = start
	}
	d.points = []reports.Point{{Time: time.UnixMicro(start).UTC(), OnHand: d.st.OnHand}}
	d.seenAny = d.known
	return i
}

// add applies one event of the day and adds it to the row, the
// out-of-stock time and the chart; duplicates and superseded events are
// only counted.
func (d *dayReplay) add(e *Event) {
	r := d.apply(e)
	switch r.Outcome {
	case ledger.Duplicate:
		d.s.Duplicates++
		return
	case ledger.Superseded, ledger.TooLate:
		d.s.Superseded++
		return
	}
	row := &d.s.Row
	row.Events++
	addByReason(row, e, r)
	if r.Alert && r.To != ledger.OK {
		row.AlertsRaised++
	}
	if !d.seenAny {
		row.MinOnHand = r.OnHand
		d.seenAny = true
	}
	row.MinOnHand = min(row.MinOnHand, r.OnHand)
	switch {
	case r.OnHand <= 0 && d.outSince < 0:
		d.outSince = e.Time
	case r.OnHand > 0 && d.outSince >= 0:
		d.outMicros += e.Time - d.outSince
		d.outSince = -1
	}
	if r.Changed() {
		d.points = append(d.points, reports.Point{Time: time.UnixMicro(e.Time).UTC(), OnHand: r.OnHand})
	}
}

// addByReason adds e's units to the row's total of its reason; a count
// adds the change it made (r).
func addByReason(row *reports.Row, e *Event, r ledger.Result) {
	switch e.Reason {
	case event.Received:
		row.Received += e.Qty
	case event.Sold:
		row.Sold += e.Qty
	case event.Returned:
		row.Returned += e.Qty
	case event.Damaged:
		row.Damaged += e.Qty
	case event.Adjusted:
		row.Adjusted += e.Qty
	case event.TransferIn:
		row.TransferIn += e.Qty
	case event.TransferOut:
		row.TransferOut += e.Qty
	case event.Counted:
		row.CountedDelta += r.OnHand - r.Previous
	}
}

// close closes the day at end: the closing stock, the net change and the
// minutes out of stock (a spell still open runs to end).
func (d *dayReplay) close(end int64) {
	if d.outSince >= 0 {
		d.outMicros += end - d.outSince
	}
	row := &d.s.Row
	row.ClosingOnHand = d.st.OnHand
	row.NetChange = row.ClosingOnHand - row.OpeningOnHand
	row.MinutesOutOfStock = float64(d.outMicros) / float64(time.Minute.Microseconds())
}

// addTrends adds the day's units sold to the key's history: the 7- and
// 28-day sales, and the days of cover at that rate.
func addTrends(row *reports.Row, it *Item) {
	row.Sold7d = it.Sold6 + row.UnitsSold()
	row.Sold28d = it.Sold27 + row.UnitsSold()
	if row.Sold28d > 0 {
		// The average over the days the key has a summary for: the 28 once
		// the history is complete, fewer while it builds up.
		days := float64(min(it.HistoryDays+1, reports.TrendDays))
		c := float64(max(row.ClosingOnHand, 0)) / (float64(row.Sold28d) / days)
		row.DaysOfCover = &c
	}
}

// reconcile compares the row's closing stock with the streaming stock,
// which must match; a key the stream never saw matches only if nothing
// happened to it.
func reconcile(row *reports.Row, it *Item) {
	if it.HasStreaming {
		v := it.StreamingOnHand
		row.StreamingOnHand = &v
		row.Reconciled = v == row.ClosingOnHand
	} else {
		row.Reconciled = len(it.Events) == 0
	}
}
