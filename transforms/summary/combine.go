package summary

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/thresholds"
	"github.com/inventory-events/inventory/reports"
)

func init() {
	register.DoFn4x1[context.Context, int, func(*part) bool, func(summary), error](&summarizeFn{})
	register.Emitter1[summary]()
	register.Iter1[part]()
	register.Combiner3[Gather, summary, Gather](&gatherFn{})
}

// Options configure the summary of one day.
type Options struct {
	Day Day
	// ThresholdsURI is a sku,location_id,threshold CSV (local path or
	// gs://); empty means the threshold of each key's latest stock_levels
	// row in Warehouse (ReadStreamThresholds), else DefaultThreshold.
	ThresholdsURI string
	// DefaultThreshold is the threshold of keys no rule names; 0 or less
	// means ledger.DefaultThreshold.
	DefaultThreshold int64
	// Warehouse, if set, holds the live threshold changes
	// (threshold_changes) made over the thresholds file: the report judges
	// each key against the threshold in force at each time of the day, as
	// the stream did.
	Warehouse string
	// MaxCharts is how many of the most affected keys keep their on-hand
	// series for the report's charts (default 6).
	MaxCharts int
}

// Summarize is a composite transform that computes the summary of each key
// of the day. It expects a PCollection of KV<int, part> (shard, a batch of
// keys with their events, opening and streaming stock, from any number of
// sources) and returns a PCollection of Summary, one per key: the Parts of
// a shard are grouped and merged, then each key's day is replayed.
//
// A GroupByKey, not a CombinePerKey: merging Parts only appends events, so
// a lifted combiner saves no shuffle, and on Prism its partial combine is a
// stage of its own after the Flatten of the sources that decodes, merges and
// re-encodes every event once more (docs/beam-notes.md, "Speed on Prism").
func Summarize(s beam.Scope, parts beam.PCollection, o Options) beam.PCollection {
	s = s.Scope("summary.Summarize")
	return beam.ParDo(s, &summarizeFn{Options: o}, beam.GroupByKey(s, parts))
}

// Gather is a composite transform that collects every key's Summary into
// one Gather: all the rows, and the on-hand series of the o.MaxCharts most
// affected keys. It expects a PCollection of Summary and returns a
// PCollection holding one Gather.
func GatherAll(s beam.Scope, summaries beam.PCollection, o Options) beam.PCollection {
	s = s.Scope("summary.Gather")
	return beam.Combine(s, &gatherFn{MaxCharts: o.MaxCharts}, summaries)
}

// summarizeFn merges the Parts of a shard, drops the events before its
// bound (part.Since), and replays each of its keys.
//
// The replays run on other goroutines, one per core, while the next
// shard's Parts are decoded and merged: a runner may hand every shard to
// one bundle (Prism does, and the stage ran on one core; upstream report:
// docs/beam-notes.md#upstream-issues-ready-to-file, item 9), and a shard's keys
// need nothing from any other's. Summaries are emitted in shard order, as
// each shard's replay is done, by the ProcessElement that finds it done or
// else by FinishBundle. All of it is in the global window, the job's only
// one.
type summarizeFn struct {
	Options Options

	th      *ledger.Thresholds
	changes map[string][]ledger.Change // live changes before the end of the day, by SKU, in order
	keys    beam.Counter
	events  beam.Counter
	early   beam.Counter
	dups    beam.Counter
	superse beam.Counter
	mismat  beam.Counter

	cores   chan struct{} // a token per replay running
	pending []*replay     // started, not emitted, in shard order
}

// replay is the replay of one shard's keys.
type replay struct {
	done chan struct{} // closed when sums is set
	sums []summary
}

func (f *summarizeFn) Setup(ctx context.Context) error {
	def := f.Options.DefaultThreshold
	if def <= 0 {
		def = ledger.DefaultThreshold
	}
	var err error
	if f.changes, err = readThresholdChanges(ctx, f.Options.Warehouse, f.Options.Day.End); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if f.Options.ThresholdsURI == "" {
		// No thresholds file: the thresholds the stream judged each key
		// against, as it stored them in stock_levels.
		f.th, err = ReadStreamThresholds(ctx, f.Options.Warehouse, f.Options.Day.End, f.changes, def)
	} else {
		f.th, err = thresholds.Read(ctx, f.Options.ThresholdsURI, def)
	}
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	f.keys = beam.NewCounter("nightly", "keys")
	f.events = beam.NewCounter("nightly", "events")
	f.early = beam.NewCounter("nightly", "rows_outside_day")
	f.dups = beam.NewCounter("nightly", "duplicates")
	f.superse = beam.NewCounter("nightly", "superseded")
	f.mismat = beam.NewCounter("nightly", "mismatches")
	f.cores = make(chan struct{}, runtime.GOMAXPROCS(0))
	return nil
}

func (f *summarizeFn) StartBundle(context.Context, func(summary)) {
	f.pending = f.pending[:0] // a failed bundle's, if any
}

// ProcessElement merges the shard's Parts and starts the replay of its
// keys, waiting while every core has one; then it emits the Summaries of
// the replays done so far.
func (f *summarizeFn) ProcessElement(ctx context.Context, _ int, parts func(*part) bool, emit func(summary)) error {
	p, err := mergeParts(parts)
	if err != nil {
		return fmt.Errorf("summary: decode the shard's parts: %w", err)
	}
	f.early.Inc(ctx, p.dropBefore())
	r := &replay{done: make(chan struct{})}
	f.pending = append(f.pending, r)
	f.cores <- struct{}{}
	go func() {
		defer func() { <-f.cores }()
		defer close(r.done)
		sums := make([]summary, 0, len(p.items))
		for _, it := range p.items {
			sums = append(sums, summarizeKey(it, f.Options.Day, LineOf(it.Key(), f.th, f.changes[it.SKU])))
		}
		r.sums = sums
	}()
	f.emitDone(ctx, emit, false)
	return nil
}

// FinishBundle waits for the bundle's replays and emits their Summaries.
func (f *summarizeFn) FinishBundle(ctx context.Context, emit func(summary)) {
	f.emitDone(ctx, emit, true)
}

// emitDone emits the Summaries of the pending replays in order, as far as
// they are done; with wait, it waits for each.
func (f *summarizeFn) emitDone(ctx context.Context, emit func(summary), wait bool) {
	for len(f.pending) > 0 {
		r := f.pending[0]
		if wait {
			<-r.done
		} else {
			select {
			case <-r.done:
			default:
				return
			}
		}
		for _, sum := range r.sums {
			f.keys.Inc(ctx, 1)
			f.events.Inc(ctx, sum.Row.Events)
			f.dups.Inc(ctx, sum.Duplicates)
			f.superse.Inc(ctx, sum.Superseded)
			if !sum.Row.Reconciled {
				f.mismat.Inc(ctx, 1)
			}
			emit(sum)
		}
		f.pending[0] = nil
		f.pending = f.pending[1:]
	}
}

// mergeParts merges the Parts of parts into one, decoding each straight
// into it.
func mergeParts(parts func(*part) bool) (*part, error) {
	acc := newPart()
	for {
		var p part
		if !parts(&p) {
			break
		}
		if p.raw == nil { // not through Beam's coder (a runner that did not encode it)
			acc.Merge(&p)
			continue
		}
		if err := acc.mergeEncoded(p.raw); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// Gather is every row of the day and the series of the most affected keys.
type Gather struct {
	Rows       []reports.Row
	Charts     []Chart
	Duplicates int64
	Superseded int64
	// Days add up the keys' trend days (Day.Days), oldest first.
	Days []DayTotals
}

// DayTotals add up the keys of one trend day: how many had a known stock,
// the units they sold, how many closed below threshold (out of stock
// included) and out of stock.
type DayTotals struct {
	Keys, UnitsSold, KeysBelow, KeysOut int64
}

// addTrend adds one key's trend days to g.
func (g *Gather) addTrend(trend []trendDay) {
	if len(g.Days) < len(trend) {
		g.Days = append(g.Days, make([]DayTotals, len(trend)-len(g.Days))...)
	}
	for i, t := range trend {
		d := &g.Days[i]
		d.UnitsSold += t.Sold
		if t.Close == closeUnknown {
			continue
		}
		d.Keys++
		if t.Close == closeBelow || t.Close == closeOut {
			d.KeysBelow++
		}
		if t.Close == closeOut {
			d.KeysOut++
		}
	}
}

// addDays adds o's day totals to g's.
func (g *Gather) addDays(o []DayTotals) {
	if len(g.Days) < len(o) {
		g.Days = append(g.Days, make([]DayTotals, len(o)-len(g.Days))...)
	}
	for i, t := range o {
		d := &g.Days[i]
		d.Keys += t.Keys
		d.UnitsSold += t.UnitsSold
		d.KeysBelow += t.KeysBelow
		d.KeysOut += t.KeysOut
	}
}

// Merge adds o to g (the rows, charts, counts and days, not the limit on
// charts).
func (g *Gather) Merge(o Gather) {
	g.Rows = append(g.Rows, o.Rows...)
	g.Charts = append(g.Charts, o.Charts...)
	g.Duplicates += o.Duplicates
	g.Superseded += o.Superseded
	g.addDays(o.Days)
}

// Chart is a chart candidate: a key's row and its on-hand series.
type Chart struct {
	Row    reports.Row
	Series reports.Series
}

// Series returns the kept series, worst first.
func (g *Gather) Series() []reports.Series {
	out := make([]reports.Series, len(g.Charts))
	for i, c := range sortWorst(g.Charts) {
		out[i] = c.Series
	}
	return out
}

// gatherFn collects rows and keeps the MaxCharts worst series.
type gatherFn struct {
	MaxCharts int
}

func (*gatherFn) CreateAccumulator() Gather { return Gather{} }

func (f *gatherFn) AddInput(g Gather, s summary) Gather {
	g.Rows = append(g.Rows, s.Row)
	g.Duplicates += s.Duplicates
	g.Superseded += s.Superseded
	g.addTrend(s.Trend)
	if s.Series != nil {
		g.Charts = append(g.Charts, Chart{Row: s.Row, Series: *s.Series})
		if len(g.Charts) >= 4*f.max() {
			g.Charts = sortWorst(g.Charts)[:f.max()]
		}
	}
	return g
}

func (f *gatherFn) MergeAccumulators(a, b Gather) Gather {
	a.Merge(b)
	if len(a.Charts) > f.max() {
		a.Charts = sortWorst(a.Charts)[:f.max()]
	}
	return a
}

func (f *gatherFn) ExtractOutput(g Gather) Gather {
	if len(g.Charts) > f.max() {
		g.Charts = sortWorst(g.Charts)[:f.max()]
	}
	return g
}

func (f *gatherFn) max() int {
	if f.MaxCharts <= 0 {
		return 6
	}
	return f.MaxCharts
}

func sortWorst(cs []Chart) []Chart {
	slices.SortFunc(cs, func(a, b Chart) int {
		switch {
		case reports.MoreAffected(&a.Row, &b.Row):
			return -1
		case reports.MoreAffected(&b.Row, &a.Row):
			return 1
		}
		return 0
	})
	return cs
}
