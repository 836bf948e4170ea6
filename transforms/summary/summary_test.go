package summary

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/reports"
)

func TestMain(m *testing.M) { ptest.Main(m) }

var day = Day{Start: mustTime("2026-03-10T00:00:00Z"), End: mustTime("2026-03-11T00:00:00Z")}

// trendWindow is day with its 27 trend days before it (UTC).
var trendWindow = func() Day {
	w := day
	for i := range reports.TrendDays - 1 {
		w.Days = append(w.Days, day.Start-int64(reports.TrendDays-1-i)*86400e6)
	}
	return w
}()

func mustTime(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func ev(id, hhmm string, r event.Reason, q int64) keyEvent {
	return keyEvent{ID: id, Time: mustTime("2026-03-10T" + hhmm + ":00Z"), Reason: r, Qty: q}
}

func TestSummarize1(t *testing.T) {
	opening := func(n int64) keyItem {
		return keyItem{SKU: "S", LocationID: "L", HasOpening: true, OpeningOnHand: n, OpeningAt: day.Start - 1}
	}
	tests := []struct {
		name      string
		item      keyItem
		threshold int64
		line      *Line // instead of threshold
		window    Day
		want      reports.Row
		dups, sup int64
	}{{
		name: "count mid-day, a sale before it listed after it, a redelivery",
		item: func() keyItem {
			it := opening(20)
			it.Events = []keyEvent{ev("c", "12:00", event.Counted, 15), ev("s1", "08:00", event.Sold, -3),
				ev("s2", "11:00", event.Sold, -4), ev("s3", "14:00", event.Sold, -6), ev("s3", "14:00", event.Sold, -6)}
			return it
		}(),
		threshold: 10, dups: 1,
		// 20 -3 -4 = 13; count 15 (+2); -6 = 9 (LOW).
		want: reports.Row{OpeningOnHand: 20, ClosingOnHand: 9, Sold: -13, CountedDelta: 2, NetChange: -11,
			MinOnHand: 9, Events: 4, AlertsRaised: 1, DaysOfCover: ptr(9.0 / 13), Sold7d: 13, Sold28d: 13},
	}, {
		name: "trends: the day's sales added to those of the 9 days since the snapshot",
		item: keyItem{SKU: "S", LocationID: "L", HasOpening: true, OpeningOnHand: 97, OpeningAt: day.Start - 9*86400e6,
			Events: []keyEvent{
				{ID: "d9", Time: day.Start - 9*86400e6 + 36000e6, Reason: event.Sold, Qty: -27},
				{ID: "d3", Time: day.Start - 3*86400e6 + 36000e6, Reason: event.Sold, Qty: -30},
				{ID: "d40", Time: day.Start - 40*86400e6, Reason: event.Sold, Qty: -1000}, // before the snapshot
				ev("s", "10:00", event.Sold, -3)}},
		window:    trendWindow,
		threshold: 10,
		// 60 units over 10 days: 6 a day; 33 in the last 7 days.
		want: reports.Row{OpeningOnHand: 40, ClosingOnHand: 37, Sold: -3, NetChange: -3, MinOnHand: 37, Events: 1,
			DaysOfCover: ptr(37.0 / 6), Sold7d: 33, Sold28d: 60},
	}, {
		name: "trends: the stream's starting stock has no date: the average is over the days since the first event",
		item: keyItem{SKU: "S", LocationID: "L", HasOpening: true, OpeningOnHand: 50, OpeningAt: baselineAt,
			Events: []keyEvent{{ID: "d1", Time: day.Start - 86400e6 + 36000e6, Reason: event.Sold, Qty: -10},
				ev("s", "10:00", event.Sold, -2)}},
		window:    trendWindow,
		threshold: 10,
		// 12 units over 2 days: 6 a day.
		want: reports.Row{OpeningOnHand: 40, ClosingOnHand: 38, Sold: -2, NetChange: -2, MinOnHand: 38, Events: 1,
			DaysOfCover: ptr(38.0 / 6), Sold7d: 12, Sold28d: 12},
	}, {
		name:      "trends: nothing sold today, nothing before: no cover",
		item:      opening(40),
		window:    trendWindow,
		threshold: 10,
		want:      reports.Row{OpeningOnHand: 40, ClosingOnHand: 40, MinOnHand: 40, Reconciled: true},
	}, {
		name: "a live change the day before applies from the opening; one at noon raises an alert",
		item: func() keyItem {
			it := opening(12)
			it.Events = []keyEvent{ev("s", "09:00", event.Sold, -1)}
			return it
		}(),
		line: &Line{Base: 10, Steps: []Step{{At: day.Start - 3600e6, Threshold: 5}, {At: mustTime("2026-03-10T12:00:00Z"), Threshold: 30}}},
		// 12 -1 = 11: OK at 5; at 12:00 the threshold is 30: LOW.
		want: reports.Row{OpeningOnHand: 12, ClosingOnHand: 11, Sold: -1, NetChange: -1, MinOnHand: 11, Events: 1,
			AlertsRaised: 1, Threshold: 30, DaysOfCover: ptr(11.0), Sold7d: 1, Sold28d: 1},
	}, {
		name: "a delta at the count's time is in the count",
		item: func() keyItem {
			it := opening(5)
			it.Events = []keyEvent{ev("a-count", "10:00", event.Counted, 7), ev("b-recv", "10:00", event.Received, 3)}
			return it
		}(),
		threshold: 2, sup: 1,
		want: reports.Row{OpeningOnHand: 5, ClosingOnHand: 7, CountedDelta: 2, NetChange: 2, MinOnHand: 5, Events: 1},
	}, {
		name: "out of stock twice, the second time to the end of the day",
		item: func() keyItem {
			it := opening(2)
			it.Events = []keyEvent{ev("1", "01:00", event.Sold, -2), ev("2", "01:30", event.Received, 1),
				ev("3", "23:00", event.Damaged, -1), ev("4", "23:30", event.Adjusted, -1)}
			return it
		}(),
		threshold: 1,
		// OUT 01:00-01:30 (30 min) and from 23:00 (60 min); -1 at 23:30 stays OUT.
		want: reports.Row{OpeningOnHand: 2, ClosingOnHand: -1, Received: 1, Sold: -2, Damaged: -1, Adjusted: -1,
			NetChange: -3, MinOnHand: -1, Events: 4, AlertsRaised: 2, MinutesOutOfStock: 90, DaysOfCover: ptr(0.0),
			Sold7d: 2, Sold28d: 2},
	}, {
		name:      "a key that opens out of stock and stays so",
		item:      opening(0),
		threshold: 5,
		want:      reports.Row{MinutesOutOfStock: 1440, Reconciled: true},
	}, {
		name: "the snapshot is older than the day: events before the day make the opening",
		item: keyItem{SKU: "S", LocationID: "L", HasOpening: true, OpeningOnHand: 10, OpeningAt: day.Start - 3600e6,
			Events: []keyEvent{{ID: "pre", Time: day.Start - 60e6, Reason: event.Sold, Qty: -4},
				{ID: "old", Time: day.Start - 7200e6, Reason: event.Sold, Qty: -100}, // before the snapshot
				ev("in", "09:00", event.TransferIn, 2), {ID: "next", Time: day.End, Reason: event.Sold, Qty: -1}}},
		threshold: 3,
		want:      reports.Row{OpeningOnHand: 6, ClosingOnHand: 8, TransferIn: 2, NetChange: 2, MinOnHand: 6, Events: 1},
	}, {
		name:      "a new key",
		item:      keyItem{SKU: "S", LocationID: "L", Events: []keyEvent{ev("r", "06:00", event.Received, 4)}},
		threshold: 10,
		want:      reports.Row{ClosingOnHand: 4, Received: 4, NetChange: 4, MinOnHand: 4, Events: 1, AlertsRaised: 1},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, w := flat(tc.threshold), tc.want
			if tc.line != nil {
				line = *tc.line
			} else {
				w.Threshold = tc.threshold
			}
			win := tc.window
			if win.End == 0 {
				win = day
			}
			got := summarizeKey(&tc.item, win, line)
			w.SKU, w.LocationID = "S", "L"
			if !sameRow(got.Row, w) {
				t.Errorf("row =\n %+v\nwant\n %+v", show(got.Row), show(w))
			}
			if got.Duplicates != tc.dups || got.Superseded != tc.sup {
				t.Errorf("duplicates, superseded = %d, %d; want %d, %d", got.Duplicates, got.Superseded, tc.dups, tc.sup)
			}
			if (got.Series != nil) != reports.Affected(&got.Row) {
				t.Errorf("series kept = %v, affected = %v", got.Series != nil, reports.Affected(&got.Row))
			}
		})
	}
}

func TestSeries(t *testing.T) {
	it := keyItem{SKU: "S", LocationID: "L", HasOpening: true, OpeningOnHand: 3, OpeningAt: day.Start - 1,
		Events: []keyEvent{ev("1", "10:00", event.Sold, -3), ev("2", "11:00", event.Counted, 0), ev("3", "12:00", event.Received, 5)}}
	s := summarizeKey(&it, day, flat(4))
	if s.Series == nil {
		t.Fatal("no series for a key that ran out")
	}
	var got []int64
	for _, p := range s.Series.Points {
		got = append(got, p.OnHand)
	}
	// The count of 0 changes nothing and adds no point.
	if want := []int64{3, 0, 5}; !equal(got, want) {
		t.Errorf("series on-hand = %v, want %v", got, want)
	}
	if s.Row.MinutesOutOfStock != 120 {
		t.Errorf("minutes out of stock = %v, want 120", s.Row.MinutesOutOfStock)
	}
}

// roundTripPart encodes p and decodes it again.
func roundTripPart(t *testing.T, p *part) ([]byte, part) {
	t.Helper()
	enc, err := encodePart(*p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePart(enc)
	if err != nil {
		t.Fatal(err)
	}
	return enc, got
}

func TestPartCoder(t *testing.T) {
	p := newPart()
	p.Item("A", "L1").Events = []keyEvent{{ID: "e1", Time: -5, Reason: event.Sold, Qty: -3}, {ID: "e2", Time: 1 << 60, Reason: event.Counted, Qty: 7}}
	b := p.Item("B", "L2")
	b.HasOpening, b.OpeningOnHand, b.OpeningAt, b.HasStreaming, b.StreamingOnHand = true, -4, 99, true, 12
	enc, got := roundTripPart(t, p)
	if len(got.Items()) != 2 || got.Len() != 2 {
		t.Fatalf("decoded %d items, %d events", len(got.Items()), got.Len())
	}
	a, bb := got.Items()[event.Key{SKU: "A", LocationID: "L1"}], got.Items()[event.Key{SKU: "B", LocationID: "L2"}]
	if a.Events[1] != (keyEvent{ID: "e2", Time: 1 << 60, Reason: event.Counted, Qty: 7}) || a.Events[0].Time != -5 {
		t.Errorf("events = %+v", a.Events)
	}
	if !bb.HasOpening || bb.OpeningOnHand != -4 || bb.OpeningAt != 99 || !bb.HasStreaming || bb.StreamingOnHand != 12 {
		t.Errorf("item B = %+v", bb)
	}
	if _, err := decodePart(enc[:len(enc)-1]); err == nil {
		t.Error("a truncated part decodes")
	}
}

// TestPartCoderEvents round-trips events whose ids share prefixes or not
// and whose times go back and forth, to the extremes of int64.
func TestPartCoderEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ids := []string{"", "e", "evt-1-00000001", "evt-1-00000002", "evt-1-00000002", "evt-1-000", "evt-2-00000001", "ünï", "\x00x"}
	times := []int64{0, -1, math.MinInt64, math.MaxInt64, 1 << 60, -(1 << 62), 1_795_000_000_000_000}
	p := newPart()
	want := map[event.Key][]keyEvent{}
	for i := range 50 {
		k := event.Key{SKU: fmt.Sprintf("SKU-%d", i%7), LocationID: "L"}
		e := keyEvent{ID: ids[rng.IntN(len(ids))] + strings.Repeat("9", rng.IntN(3)), Time: times[rng.IntN(len(times))] + rng.Int64N(1000),
			Reason: event.Reason(rng.IntN(8)), Qty: rng.Int64() >> rng.IntN(64)}
		it := p.Item(k.SKU, k.LocationID)
		it.Events = append(it.Events, e)
		want[k] = append(want[k], e)
	}
	_, got := roundTripPart(t, p)
	for k, evs := range want {
		if !slices.Equal(got.Items()[k].Events, evs) {
			t.Errorf("%v: events %+v, want %+v", k, got.Items()[k].Events, evs)
		}
	}
	// A shared prefix longer than the id before it is corrupt, not a panic.
	bad := newPart()
	bad.Item("A", "L").Events = []keyEvent{{ID: "abc"}}
	enc, _ := encodePart(*bad)
	i := bytes.Index(enc, []byte("\x00\x03abc")) // shared 0, then "abc"
	if i < 0 {
		t.Fatalf("encoding %q holds no id", enc)
	}
	enc[i] = 5
	if _, err := decodePart(enc); err == nil {
		t.Error("an id sharing more than the id before it decodes")
	}
}

// TestPartCoderIDsAndTimes round-trips what the compact forms of encodePart
// cover and what they must leave alone: ids whose differing tails are
// decimal numbers of one width (leading zeros, going down, carrying into a
// new digit), of different widths, too wide for int64, or not numbers at
// all; times in whole milliseconds and not; keys that share a SKU, a
// location or neither; items with and without opening and streaming stock.
func TestPartCoderIDsAndTimes(t *testing.T) {
	ids := []string{"evt-1-00000001", "evt-1-00000031", "evt-1-00000030", "evt-1-00000099", "evt-1-00000100",
		"evt-1-0000100", "evt-1-99999999", "evt-1-00000000", "a-0099", "a-0100", "a-0099", "a-9", "a-10",
		"a-099", "x", "x1", "x2", "", "9", "10", "1234567890123456789012", "1234567890123456789013",
		"999999999999999999", "000000000000000000", "ord 12", "ord 1x", "ord 13", "ünï-01", "ünï-02"}
	times := []int64{0, 1000, 2000, 2001, -1000, math.MaxInt64, math.MinInt64, math.MinInt64 + 1000, 1_795_000_000_000_000, 1_795_000_000_000_123}
	p := newPart()
	want := map[event.Key]*keyItem{}
	for i, id := range ids {
		sku, loc := fmt.Sprintf("SKU-%d", i%4), []string{"DC-1", "STORE-1", "STORE-2", "WH"}[i%3]
		it := p.Item(sku, loc)
		it.Events = append(it.Events, keyEvent{ID: id, Time: times[i%len(times)], Reason: event.Reason(i % 8), Qty: int64(i - 7)})
		if i%5 == 0 {
			it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, int64(i), int64(-i)
		}
		if i%7 == 0 {
			it.HasStreaming, it.StreamingOnHand = true, 0
		}
		if i%9 == 0 {
			it.StreamingOnHand = 3 // set without HasStreaming: kept as it is
		}
		want[it.Key()] = it
	}
	_, got := roundTripPart(t, p)
	if len(got.Items()) != len(want) {
		t.Fatalf("decoded %d items, want %d", len(got.Items()), len(want))
	}
	for k, w := range want {
		g := got.Items()[k]
		if g == nil {
			t.Errorf("%v: missing", k)
			continue
		}
		if !slices.Equal(g.Events, w.Events) {
			t.Errorf("%v: events %+v, want %+v", k, g.Events, w.Events)
		}
		g2, w2 := *g, *w
		g2.Events, w2.Events = nil, nil
		if !reflect.DeepEqual(g2, w2) {
			t.Errorf("%v: item %+v, want %+v", k, *g, w2)
		}
	}
}

// TestPartCoderCorruptNumericID: a numeric id difference that leaves the
// width of the id before it, or goes below zero, is corrupt, not a panic
// or a wrong id.
func TestPartCoderCorruptNumericID(t *testing.T) {
	p := newPart()
	p.Item("A", "L").Events = []keyEvent{{ID: "a-05"}, {ID: "a-07"}}
	enc, _ := encodePart(*p)
	i := bytes.Index(enc, []byte{3<<1 | 1, 4}) // shared "a-0", then +2 (zigzag 4)
	if i < 0 {
		t.Fatalf("encoding %q holds no numeric id", enc)
	}
	for _, delta := range []byte{10, 11} { // zigzag: +5 makes "10" in a width of one; -6 goes below zero
		bad := slices.Clone(enc)
		bad[i+1] = delta
		if _, err := decodePart(bad); err == nil {
			t.Errorf("delta byte %d decodes", delta)
		}
	}
}

// TestPartCoderCompact: a day's events of a key, with sequential ids a
// few minutes apart, take about half their plain size (the shuffle's
// bytes, see encodePart).
func TestPartCoderCompact(t *testing.T) {
	p := newPart()
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC).UnixMicro()
	plain := 0
	for i := range 3000 {
		it := p.Item(fmt.Sprintf("SKU-%05d", i%100), "STORE-001")
		e := keyEvent{ID: fmt.Sprintf("evt-1-%08d", i*7), Time: start + int64(i)*28_800_000, Reason: event.Sold, Qty: -2}
		it.Events = append(it.Events, e)
		plain += 1 + len(e.ID) + 8 + 1 + 1 // length, id, time, reason, quantity
	}
	enc, err := encodePart(*p)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > plain*6/10 {
		t.Errorf("3,000 events take %d bytes, %d plain: want at most 60%%", len(enc), plain)
	}
}

func TestGatherKeepsWorst(t *testing.T) {
	f := &gatherFn{MaxCharts: 2}
	acc := f.CreateAccumulator()
	other := f.CreateAccumulator()
	for i, minutes := range []float64{5, 0, 300, 60, 1} {
		row := reports.Row{SKU: string(rune('A' + i)), LocationID: "L", MinutesOutOfStock: minutes}
		s := summary{Row: row, Series: &reports.Series{SKU: row.SKU, LocationID: "L"}}
		if i%2 == 0 {
			acc = f.AddInput(acc, s)
		} else {
			other = f.AddInput(other, s)
		}
	}
	g := f.ExtractOutput(f.MergeAccumulators(acc, other))
	series := g.Series()
	if len(g.Rows) != 5 || len(series) != 2 || series[0].SKU != "C" || series[1].SKU != "D" {
		t.Errorf("gathered %d rows, charts %v; want 5 rows and charts C, D", len(g.Rows), series)
	}
}

// TestSummarizePipeline merges the Parts of one key coming from different
// sources (opening, events in two chunks, streaming) on Prism.
func TestSummarizePipeline(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	opening, chunk1, chunk2, stream := newPart(), newPart(), newPart(), newPart()
	it := opening.Item("S", "L")
	it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, 10, day.Start-1
	chunk1.Item("S", "L").Events = []keyEvent{ev("1", "09:00", event.Sold, -4)}
	chunk2.Item("S", "L").Events = []keyEvent{ev("2", "10:00", event.Sold, -5), ev("1", "09:00", event.Sold, -4)}
	chunk2.Item("T", "L").Events = []keyEvent{ev("3", "10:00", event.Received, 2)}
	st := stream.Item("S", "L")
	st.HasStreaming, st.StreamingOnHand = true, 1

	p, s := beam.NewPipelineWithRoot()
	parts := beam.AddFixedKey(s, beam.CreateList(s, []part{*opening, *chunk1, *chunk2, *stream}))
	sums := Summarize(s, parts, Options{Day: day, DefaultThreshold: 3})
	rows := beam.ParDo(s, describe, sums)
	passert.Equals(s, rows, "S closing 1 reconciled true sold 9/9", "T closing 2 reconciled false sold 0/0")
	ptest.RunAndValidate(t, p)
}

// TestSummarizeManyShards: with more shards than cores in one bundle,
// every key's Summary is emitted once (the replays run concurrently and are
// emitted in ProcessElement or FinishBundle).
func TestSummarizeManyShards(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	const shards, keys = 64, 40
	var parts []part
	var want int64
	for sh := range shards {
		p := newPart()
		for k := range keys {
			it := p.Item(fmt.Sprintf("S%d-%d", sh, k), "L")
			it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, int64(sh), day.Start-1
			it.Events = []keyEvent{ev(fmt.Sprintf("e%d-%d", sh, k), "09:00", event.Received, int64(k))}
			want += int64(sh + k)
		}
		parts = append(parts, *p)
	}
	p, s := beam.NewPipelineWithRoot()
	kv := beam.ParDo(s, shardOf, beam.CreateList(s, parts))
	sums := Summarize(s, kv, Options{Day: day, DefaultThreshold: 3})
	passert.Count(s, sums, "summaries", shards*keys)
	passert.Equals(s, stats.Sum(s, beam.ParDo(s, closing, sums)), want)
	ptest.RunAndValidate(t, p)
}

func init() {
	register.Function1x1(closing)
	register.Function2x0(shardOf)
}

func closing(x summary) int64 { return x.Row.ClosingOnHand }

// shardOf keys a part by its first key's SKU, one shard per part.
func shardOf(p part, emit func(int, part)) {
	for k := range p.Items() {
		var sh int
		fmt.Sscanf(k.SKU, "S%d-", &sh)
		emit(sh, p)
		return
	}
}

func init() { register.Function1x1(describe) }

func describe(x summary) string {
	return fmt.Sprintf("%s closing %d reconciled %v sold %d/%d", x.Row.SKU, x.Row.ClosingOnHand, x.Row.Reconciled,
		x.Row.Sold7d, x.Row.Sold28d)
}

func ptr[T any](v T) *T { return &v }

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameRow(a, b reports.Row) bool {
	if (a.DaysOfCover == nil) != (b.DaysOfCover == nil) ||
		(a.DaysOfCover != nil && math.Abs(*a.DaysOfCover-*b.DaysOfCover) > 1e-9) {
		return false
	}
	if (a.StreamingOnHand == nil) != (b.StreamingOnHand == nil) {
		return false
	}
	a.DaysOfCover, b.DaysOfCover, a.StreamingOnHand, b.StreamingOnHand = nil, nil, nil, nil
	return a == b
}

type shown struct {
	reports.Row
	Cover *float64
}

func show(r reports.Row) any {
	c := r.DaysOfCover
	r.DaysOfCover = nil
	return shown{r, c}
}
