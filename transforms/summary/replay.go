package summary

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/reports"
)

// Day is the report day: [Start, End) in Unix µs, and the starts of the
// trend days before it (Days: the 27 days before the report date, oldest
// first; each day ends where the next, or the report day, starts).
type Day struct {
	Start, End int64
	Days       []int64
}

// dayEnd returns the end of trend day i of w.
func (w Day) dayEnd(i int) int64 {
	if i+1 < len(w.Days) {
		return w.Days[i+1]
	}
	return w.Start
}

// Step is a change of a key's threshold: from At (Unix µs) on, Threshold.
type Step struct {
	At, Threshold int64
}

// Line is a key's reorder threshold over time: Base, then each Step in
// order of time (the live changes of the key's rules).
type Line struct {
	Base  int64
	Steps []Step
}

// flat returns the Line of a threshold that never changes.
func flat(threshold int64) Line { return Line{Base: threshold} }

// At returns the threshold in force at t: the last step at or before t.
func (l Line) At(t int64) int64 {
	th := l.Base
	for _, s := range l.Steps {
		if s.At > t {
			break
		}
		th = s.Threshold
	}
	return th
}

// keyEvent is one adjustment of a key, as the replay needs it.
type keyEvent struct {
	ID     string
	Time   int64 // Unix µs
	Reason event.Reason
	Qty    int64
}

// keyItem is everything known about one key for the report day.
type keyItem struct {
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
	// Events are the key's adjustments from the opening stock's time to the
	// end of the day: those before the day bring the opening up to its
	// start and make the trends.
	Events []keyEvent
}

// Key returns the stock key of it.
func (it *keyItem) Key() event.Key { return event.Key{SKU: it.SKU, LocationID: it.LocationID} }

// merge adds o's facts to it.
func (it *keyItem) merge(o *keyItem) {
	if o.HasOpening && (!it.HasOpening || o.OpeningAt > it.OpeningAt) {
		it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, o.OpeningOnHand, o.OpeningAt
	}
	if o.HasStreaming {
		it.HasStreaming, it.StreamingOnHand = true, o.StreamingOnHand
	}
	it.Events = append(it.Events, o.Events...)
}

// summary is the replay of one key's day: its report row, and its on-hand
// over the day when the key was affected (see reports.Affected).
type summary struct {
	Row    reports.Row
	Series *reports.Series
	// Duplicates and Superseded count the day's events that changed nothing.
	Duplicates, Superseded int64
	// Trend is the key's trend days (Day.Days), oldest first; nil when
	// the window has none.
	Trend []trendDay
}

// trendDay is one key's day of the trend window: the units it sold
// (positive) and how it closed; a day before the key's first data (its
// first event, or the time of its snapshot) closes closeUnknown and does
// not count in its average daily sales.
type trendDay struct {
	Sold  int64
	Close Close
}

// Close is how a key closed a day.
type Close uint8

// Closes: Unknown (no stock known yet), then as ledger severities.
const (
	closeUnknown Close = iota
	closeOK
	closeBelow // below the threshold, not out
	closeOut   // on-hand <= 0
)

// summarizeKey replays the events of it, in event-time order (ties by
// event_id), through a ledger.State seeded with the key's opening stock,
// judged against the key's threshold in force at each time (th: a live
// change re-evaluates the key's severity as the stream does). Events before
// the window bring the opening up to the start of the day and make the
// trend days of w; events at or after its end are ignored. Every figure is
// a function of it and w alone: of the data, not of earlier runs.
func summarizeKey(it *keyItem, w Day, th Line) summary {
	evs := sortedEvents(it.Events)
	d := newDayReplay(it, th, len(w.Days))
	i := d.history(evs, w)
	for ; i < len(evs) && evs[i].Time < w.End; i++ {
		d.steps(evs[i].Time, true)
		d.add(&evs[i])
	}
	d.steps(w.End-1, true)
	d.close(w.End)
	row := &d.s.Row
	row.Threshold = d.threshold
	addTrends(row, d.s.Trend)
	reconcile(row, it)
	if reports.Affected(row) {
		d.s.Series = &reports.Series{SKU: it.SKU, LocationID: it.LocationID, Threshold: d.threshold, Points: d.points}
	}
	return d.s
}

// sortedEvents returns a copy of evs in event-time order, ties by id.
// Events mostly come in that order already (a day's file is written as
// they happen), and checking costs far less than sorting.
func sortedEvents(evs []keyEvent) []keyEvent {
	evs = slices.Clone(evs)
	if !slices.IsSortedFunc(evs, compareEvents) {
		slices.SortFunc(evs, compareEvents)
	}
	return evs
}

func compareEvents(a, b keyEvent) int {
	return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.ID, b.ID))
}

// dayReplay is the replay of one key's day: the ledger, the summary being
// built, and what the row's out-of-stock time and the chart need.
type dayReplay struct {
	st        *ledger.State
	adj       event.Adjustment // reused for each event
	line      Line
	next      int   // the next step of line to apply
	threshold int64 // in force now
	inDay     bool  // the replay is in the report day: count alerts
	known     bool  // on-hand is known (not a key never seen)
	dataSince int64 // the key has data from then on (a dated opening stock or an applied event)
	seenAny   bool  // the minimum on-hand has a value
	s         summary
	outSince  int64 // start of the current out-of-stock spell, -1: none
	outMicros int64 // out of stock so far
	points    []reports.Point
}

// newDayReplay starts the replay of it from its opening stock, if known,
// with trendDays days of trends.
func newDayReplay(it *keyItem, th Line, trendDays int) *dayReplay {
	d := &dayReplay{
		st: &ledger.State{}, line: th, known: it.HasOpening, outSince: -1, dataSince: math.MaxInt64,
		adj: event.Adjustment{SKU: it.SKU, LocationID: it.LocationID},
		s:   summary{Row: reports.Row{SKU: it.SKU, LocationID: it.LocationID}},
	}
	if trendDays > 0 {
		d.s.Trend = make([]trendDay, trendDays)
	}
	start := int64(math.MinInt64)
	if it.HasOpening {
		start = it.OpeningAt
	}
	d.threshold = th.Base
	d.steps(start, true)
	if it.HasOpening {
		d.st = ledger.FromSnapshot(it.OpeningOnHand, it.OpeningAt, d.threshold)
		if it.OpeningAt != baselineAt {
			d.dataSince = it.OpeningAt
		}
	}
	return d
}

// steps applies the threshold changes up to t (at t too, with inclusive),
// re-evaluating the key's severity as the stream does; in the report day a
// change that takes the key below its threshold raises an alert.
func (d *dayReplay) steps(t int64, inclusive bool) {
	for d.next < len(d.line.Steps) {
		s := d.line.Steps[d.next]
		if s.At > t || (!inclusive && s.At == t) {
			return
		}
		d.next++
		d.threshold = s.Threshold
		if r := d.st.Reevaluate(s.Threshold); d.inDay && r.Alert && r.To != ledger.OK {
			d.s.Row.AlertsRaised++
		}
	}
}

// apply applies e to the key's ledger.
func (d *dayReplay) apply(e *keyEvent) ledger.Result {
	d.adj.EventID, d.adj.EventTime, d.adj.Reason, d.adj.Quantity = e.ID, e.Time, e.Reason, e.Qty
	return d.st.Apply(&d.adj, d.threshold, 0)
}

// history applies the events of evs before the day, which bring the
// opening stock up to its start, noting each trend day of w (units sold,
// how the key closed), and opens the day's row and chart. It returns the
// index of the first event of the day.
func (d *dayReplay) history(evs []keyEvent, w Day) int {
	i := 0
	upTo := func(end int64) int64 {
		var sold int64
		for ; i < len(evs) && evs[i].Time < end; i++ {
			d.steps(evs[i].Time, true)
			r := d.apply(&evs[i])
			if r.Outcome != ledger.Applied {
				continue
			}
			d.known = true
			d.dataSince = min(d.dataSince, evs[i].Time)
			if evs[i].Reason == event.Sold {
				sold -= evs[i].Qty
			}
		}
		d.steps(end, false)
		return sold
	}
	if len(w.Days) > 0 {
		upTo(w.Days[0])
	}
	for k := range w.Days {
		t := &d.s.Trend[k]
		end := w.dayEnd(k)
		t.Sold = upTo(end)
		switch {
		case d.dataSince >= end:
			t.Close = closeUnknown
		case d.st.OnHand <= 0:
			t.Close = closeOut
		case d.st.OnHand < d.threshold:
			t.Close = closeBelow
		default:
			t.Close = closeOK
		}
	}
	upTo(w.Start)
	d.inDay = true
	start := w.Start
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
func (d *dayReplay) add(e *keyEvent) {
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
func addByReason(row *reports.Row, e *keyEvent, r ledger.Result) {
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

// addTrends adds the day's units sold to the key's trend days: the 7- and
// 28-day sales, and the days of cover at that rate.
func addTrends(row *reports.Row, trend []trendDay) {
	row.Sold7d, row.Sold28d = row.UnitsSold(), row.UnitsSold()
	days := int64(1)
	for k, t := range trend {
		row.Sold28d += t.Sold
		if k >= len(trend)-6 {
			row.Sold7d += t.Sold
		}
		if t.Close != closeUnknown {
			days++
		}
	}
	if row.Sold28d > 0 {
		// The average over the days the key's stock is known: the 28 once
		// the data covers them, fewer while it builds up.
		c := float64(max(row.ClosingOnHand, 0)) / (float64(row.Sold28d) / float64(min(days, reports.TrendDays)))
		row.DaysOfCover = &c
	}
}

// reconcile compares the row's closing stock with the streaming stock,
// which must match; a key the stream never saw matches only if nothing
// happened to it.
func reconcile(row *reports.Row, it *keyItem) {
	if it.HasStreaming {
		v := it.StreamingOnHand
		row.StreamingOnHand = &v
		row.Reconciled = v == row.ClosingOnHand
	} else {
		row.Reconciled = len(it.Events) == 0
	}
}
