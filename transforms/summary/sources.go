package summary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/csvsrc"
)

func init() {
	register.DoFn4x1[context.Context, []byte, func(int, part), func(int64), error](&openingFn{})
	register.DoFn3x1[context.Context, csvsrc.Range, func(int, part), error](&csvReadFn{})
	register.DoFn2x0[[]byte, func(int)](&sliceFn{})
	register.DoFn4x1[context.Context, int, int64, func(int, part), error](&warehouseReadFn{})
	register.DoFn3x1[context.Context, []byte, func(int, part), error](&streamingFn{})
	register.Emitter2[int, part]()
	register.Emitter1[int64]()
	register.Emitter1[int]()
}

// Opening returns the starting stock of every key (see openingFn) for the
// day of w (date, YYYY-MM-DD), as Parts of shards, and a singleton: the
// earliest event time that can still change it. Every shard's part carries
// that bound too (part.Since), and the replay drops earlier events; the
// replay of the events from there to the day makes the opening stock and
// the trends.
func Opening(s beam.Scope, wh, snapshotURI, date string, w Day, shards int) (parts, since beam.PCollection) {
	return beam.ParDo2(s, &openingFn{Warehouse: wh, Snapshot: snapshotURI, Date: date, Day: w, Shards: shards},
		beam.Impulse(s))
}

// readLanes is how many lanes of ranges ReadCSV reads (csvsrc.SplitLanes):
// one a core of the machines this was measured on, so that Prism keeps them
// busy from the start; a runner splits each lane further.
const readLanes = 2

// ReadCSV returns the adjustments of the CSV files of glob as Parts of
// shards, read in byte ranges of about chunkBytes in parallel: the valid
// rows before end. Invalid rows are counted and logged, not read. The rows
// before the opening stock's bound are dropped by the replay (part.Since),
// not here: a side input would make Prism's scheduler spin a core for as
// long as the reader runs. meter is the ID of a Meter in this process that
// counts the bytes read ("": none).
func ReadCSV(s beam.Scope, glob string, chunkBytes int64, end int64, shards int, meter string) beam.PCollection {
	var parts []beam.PCollection
	for _, ranges := range csvsrc.SplitLanes(s, glob, chunkBytes, readLanes) {
		parts = append(parts, beam.ParDo(s, &csvReadFn{End: end, Shards: shards, Meter: meter}, ranges))
	}
	return beam.Flatten(s, parts...)
}

// ReadWarehouse returns the adjustments table's rows from since (a
// singleton of Unix microseconds) to end as Parts of shards, read in
// shards slices in parallel. meter is the ID of a Meter in this process
// that counts the rows read ("": none).
func ReadWarehouse(s beam.Scope, wh string, since beam.PCollection, end int64, shards int, meter string) beam.PCollection {
	slices := beam.ParDo(s, &sliceFn{N: shards}, beam.Impulse(s))
	slices = beam.Reshuffle(s, slices)
	return beam.ParDo(s, &warehouseReadFn{Warehouse: wh, Slices: shards, End: end, Shards: shards, Meter: meter},
		slices, beam.SideInput{Input: since})
}

// Streaming returns, as Parts of shards, the streaming job's last on-hand
// of every key before end.
func Streaming(s beam.Scope, wh string, end int64, shards int) beam.PCollection {
	return beam.ParDo(s, &streamingFn{Warehouse: wh, End: end, Shards: shards}, beam.Impulse(s))
}

// openingFn emits the stock every key started from, and the earliest event
// time that can still change it: the snapshot, if one is given (from its
// as_of); else the stream's own starting stock, read from the warehouse
// (from before every event). Never an earlier report: a day's figures are
// a function of the data, whichever runs came before.
type openingFn struct {
	Warehouse string
	Snapshot  string
	Date      string // report date, YYYY-MM-DD
	Day       Day
	Shards    int
}

// baselineSQL reads the stream's starting stock of every key it changed:
// the on-hand before the first change it stored (by processed_at), which
// is the snapshot's on-hand of the key the stream started from, or 0.
// DuckDB and BigQuery both run it (BigQuery's QUALIFY wants a WHERE).
const baselineSQL = `SELECT sku, location_id, previous_on_hand FROM stock_levels WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at, event_time, event_id) = 1`

// baselineAt is the time of the stream's starting stock when it is read
// from the warehouse: before every valid event, so that the replay applies
// them all.
var baselineAt = event.MinEventTime.UnixMicro() - 1

func (f *openingFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, part), since func(int64)) error {
	sh := newSharded(f.Shards)
	var sinceAt int64
	if f.Snapshot != "" {
		snap, err := snapshot.Read(ctx, f.Snapshot)
		if err != nil {
			return fmt.Errorf("summary: opening: %w", err)
		}
		if snap.AsOf.UnixMicro() >= f.Day.End {
			slog.Warn("summary: the snapshot is newer than the report day; the day's events before it are ignored",
				"snapshot", f.Snapshot, "as_of", snap.AsOf, "date", f.Date)
		}
		earliest := f.Day.Start
		for _, it := range snap.Items {
			at := snap.Time(it).UnixMicro()
			earliest = min(earliest, at)
			x := sh.Part(it.SKU, it.LocationID).Item(it.SKU, it.LocationID)
			x.HasOpening, x.OpeningOnHand, x.OpeningAt = true, it.OnHand, at
		}
		sinceAt = earliest
	} else {
		rows, err := warehouse.QueryRows(ctx, f.Warehouse, baselineSQL)
		if err != nil {
			return fmt.Errorf("summary: opening: read the stream's starting stock from stock_levels: %w", err)
		}
		for _, r := range rows {
			sku, loc := warehouse.AsString(r["sku"]), warehouse.AsString(r["location_id"])
			it := sh.Part(sku, loc).Item(sku, loc)
			it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, warehouse.AsInt(r["previous_on_hand"]), baselineAt
		}
		sinceAt = baselineAt
	}
	since(sinceAt)
	sh.SetSince(sinceAt)
	sh.Emit(emit)
	return nil
}

// csvReadFn reads the rows of one range, validates them, and buffers them
// (readBuffer) with the other ranges of its bundle; it emits them
// pre-aggregated, one encoded part per key shard, at the bundle's end (or
// once it holds maxBundleEvents events). Rows at or after End (they cannot
// change the day) are skipped.
//
// A bundle's ranges share their parts: a key then crosses the shuffle once
// per bundle, not once per range. Each range of the benchmark's day held
// about 26,000 of its 30,000 keys, so parts per range carried every key's
// name and facts nine times: 29% of the bytes Prism copies, groups and
// sends to the summary stage, one core at a time, while no stage runs.
type csvReadFn struct {
	End    int64
	Shards int
	Meter  string

	read, invalid, skipped beam.Counter
	meter                  *Meter
	buf                    *readBuffer // the bundle's events
}

// maxBundleEvents bounds what a bundle of csvReadFn holds before it emits
// its parts: about 130 MB of events.
var maxBundleEvents = 2 << 20 // a variable for tests

func (f *csvReadFn) StartBundle(context.Context, func(int, part)) {
	if f.buf == nil {
		f.buf = newReadBuffer(f.Shards)
	}
	f.buf.reset() // a failed bundle's events, if any
}

func (f *csvReadFn) FinishBundle(_ context.Context, emit func(int, part)) {
	f.buf.emit(emit)
}

func (f *csvReadFn) Setup() {
	f.meter = lookupMeter(f.Meter)
	f.read = beam.NewCounter("nightly", "rows_read")
	f.invalid = beam.NewCounter("nightly", "rows_invalid")
	f.skipped = beam.NewCounter("nightly", "rows_outside_day")
}

func (f *csvReadFn) ProcessElement(ctx context.Context, rg csvsrc.Range, emit func(int, part)) error {
	cr, err := csvsrc.OpenRange(ctx, rg)
	if err != nil {
		return fmt.Errorf("summary: read csv: %w", err)
	}
	now := clock.Now()
	cr.Now = func() time.Time { return now }
	f.buf.reserve(int((rg.End - rg.Start) / minRowBytes))
	var a event.Adjustment
	var n, bad, skipped int64
	for {
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var inv *event.Invalid
			if !errors.As(err, &inv) {
				return fmt.Errorf("summary: read %s: %w", rg.Path, err)
			}
			if bad < 5 {
				slog.Warn("summary: invalid adjustment skipped", "file", rg.Path, "error", err)
			}
			bad++
			continue
		}
		n++
		if a.EventTime >= f.End {
			skipped++
			continue
		}
		f.buf.add(&a)
	}
	f.read.Inc(ctx, n)
	f.meter.addBytes(rg.End - rg.Start)
	f.invalid.Inc(ctx, bad)
	f.skipped.Inc(ctx, skipped)
	if f.buf.Len() >= maxBundleEvents {
		f.buf.emit(emit)
	}
	return nil
}

// sliceFn emits 0..N-1: the slices of the day's adjustments read in parallel.
type sliceFn struct{ N int }

func (f *sliceFn) ProcessElement(_ []byte, emit func(int)) {
	for i := 0; i < f.N; i++ {
		emit(i)
	}
}

// warehouseReadFn reads one slice (by key hash) of the day's adjustments
// from the warehouse, from since to End, and emits them pre-aggregated per
// key shard. Deliveries marked DUPLICATE are left out; the replay drops any
// other repeat of an event_id.
type warehouseReadFn struct {
	Warehouse string
	Slices    int
	End       int64
	Shards    int
	Meter     string

	read  beam.Counter
	meter *Meter
}

func (f *warehouseReadFn) Setup() {
	f.read = beam.NewCounter("nightly", "rows_read")
	f.meter = lookupMeter(f.Meter)
}

func (f *warehouseReadFn) ProcessElement(ctx context.Context, slice int, since int64, emit func(int, part)) error {
	hash := fmt.Sprintf("hash(sku || '|' || location_id) %% %d = %d", f.Slices, slice)
	if warehouse.IsBigQuery(f.Warehouse) {
		hash = fmt.Sprintf("MOD(ABS(FARM_FINGERPRINT(CONCAT(sku, '|', location_id))), %d) = %d", f.Slices, slice)
	}
	q := fmt.Sprintf(`SELECT event_id, sku, location_id, reason, quantity, event_time FROM adjustments
WHERE event_time >= %s AND event_time < %s AND status != 'DUPLICATE' AND %s`,
		warehouse.TimestampSQL(f.Warehouse, since), warehouse.TimestampSQL(f.Warehouse, f.End), hash)
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, q)
	if err != nil {
		return fmt.Errorf("summary: read adjustments slice %d: %w", slice, err)
	}
	sh := newSharded(f.Shards)
	var a event.Adjustment
	for _, r := range rows {
		reason, ok := event.ParseReason(warehouse.AsString(r["reason"]))
		if !ok {
			return fmt.Errorf("summary: adjustments: event %v has reason %v", r["event_id"], r["reason"])
		}
		t, _ := r["event_time"].(time.Time)
		a = event.Adjustment{EventID: warehouse.AsString(r["event_id"]), SKU: warehouse.AsString(r["sku"]),
			LocationID: warehouse.AsString(r["location_id"]), Reason: reason, Quantity: warehouse.AsInt(r["quantity"]),
			EventTime: t.UnixMicro()}
		sh.Part(a.SKU, a.LocationID).AddEvent(&a)
	}
	f.read.Inc(ctx, int64(len(rows)))
	f.meter.addRows(int64(len(rows)))
	sh.Emit(emit)
	return nil
}

// streamingFn emits the streaming job's last on-hand of every key before
// the end of the day, from stock_levels: the row it wrote last (by
// processed_at), since a late delta is applied after newer events and the
// row with the newest event_time is then not the stream's current stock.
type streamingFn struct {
	Warehouse string
	End       int64
	Shards    int
}

func (f *streamingFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, part)) error {
	q := fmt.Sprintf(`SELECT sku, location_id, on_hand FROM stock_levels WHERE event_time < %s
QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1`,
		warehouse.TimestampSQL(f.Warehouse, f.End))
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, q)
	if err != nil {
		return fmt.Errorf("summary: read stock_levels: %w", err)
	}
	sh := newSharded(f.Shards)
	for _, r := range rows {
		sku, loc := warehouse.AsString(r["sku"]), warehouse.AsString(r["location_id"])
		it := sh.Part(sku, loc).Item(sku, loc)
		it.HasStreaming, it.StreamingOnHand = true, warehouse.AsInt(r["on_hand"])
	}
	sh.Emit(emit)
	return nil
}
