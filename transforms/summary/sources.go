package summary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"

	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports"
	"github.com/inventory-events/inventory/transforms/csvsrc"
)

func init() {
	register.DoFn4x1[context.Context, []byte, func(int, Part), func(int64), error](&openingFn{})
	register.DoFn3x1[context.Context, csvsrc.Range, func(int, Part), error](&csvReadFn{})
	register.DoFn2x0[[]byte, func(int)](&sliceFn{})
	register.DoFn4x1[context.Context, int, int64, func(int, Part), error](&warehouseReadFn{})
	register.DoFn3x1[context.Context, []byte, func(int, Part), error](&streamingFn{})
	register.DoFn4x1[context.Context, []byte, func(int, Part), func(reports.Day), error](&historyFn{})
	register.Emitter2[int, Part]()
	register.Emitter1[int64]()
	register.Emitter1[int]()
	register.Emitter1[reports.Day]()
	register.Iter1[reports.Day]()
	beam.RegisterType(reflect.TypeFor[reports.Day]())
}

// Opening returns the opening stock of every key known before the day of
// w (date, YYYY-MM-DD), as Parts of shards, and a singleton: the earliest
// event time that can still change it, the start of the day after a
// previous daily_summary, else the snapshot's as_of. Every shard's Part
// carries that bound too (Part.Since), and the replay drops earlier events.
func Opening(s beam.Scope, wh, snapshot, date string, w Window, shards int) (parts, since beam.PCollection) {
	return beam.ParDo2(s, &openingFn{Warehouse: wh, Snapshot: snapshot, Date: date, Window: w, Shards: shards},
		beam.Impulse(s))
}

// ReadCSV returns the adjustments of the CSV files of glob as Parts of
// shards, read in byte ranges of about chunkBytes in parallel: the valid
// rows before end. Invalid rows are counted and logged, not read. The rows
// before the opening stock's bound are dropped by the replay (Part.Since),
// not here: a side input would make Prism's scheduler spin a core for as
// long as the reader runs. meter is the ID of a Meter in this process that
// counts the bytes read ("": none).
func ReadCSV(s beam.Scope, glob string, chunkBytes int64, end int64, shards int, meter string) beam.PCollection {
	ranges := csvsrc.Split(s, glob, chunkBytes)
	return beam.ParDo(s, &csvReadFn{End: end, Shards: shards, Meter: meter}, ranges)
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

// History returns the trend window's history before date (YYYY-MM-DD): per
// key, as Parts of shards, and the whole of each day, as reports.Day.
func History(s beam.Scope, wh, date string, shards int) (parts, days beam.PCollection) {
	return beam.ParDo2(s, &historyFn{Warehouse: wh, Date: date, Shards: shards}, beam.Impulse(s))
}

// openingFn emits the opening stock of every key known before the day, and
// the earliest event time that can still change it: the start of the day
// after a previous daily_summary, else the snapshot's as_of.
type openingFn struct {
	Warehouse string
	Snapshot  string
	Date      string // report date, YYYY-MM-DD
	Window    Window
	Shards    int
}

func (f *openingFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, Part), since func(int64)) error {
	d, err := civil.ParseDate(f.Date)
	if err != nil {
		return fmt.Errorf("summary: opening: %w", err)
	}
	prev := d.AddDays(-1)
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, fmt.Sprintf(
		"SELECT sku, location_id, closing_on_hand FROM daily_summary WHERE report_date = DATE '%s'", prev))
	if err != nil {
		return fmt.Errorf("summary: opening: read daily_summary %s: %w", prev, err)
	}
	sh := NewSharded(f.Shards)
	var sinceAt int64
	switch {
	case len(rows) > 0:
		// The previous closing is the stock just before the day: an event
		// at midnight belongs to the day.
		at := f.Window.Start - 1
		for _, r := range rows {
			sku, loc := warehouse.AsString(r["sku"]), warehouse.AsString(r["location_id"])
			it := sh.Part(sku, loc).Item(sku, loc)
			it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, warehouse.AsInt(r["closing_on_hand"]), at
		}
		sinceAt = f.Window.Start
	case f.Snapshot != "":
		snap, err := snapshot.Read(ctx, f.Snapshot)
		if err != nil {
			return fmt.Errorf("summary: opening: %w", err)
		}
		if snap.AsOf.UnixMicro() >= f.Window.End {
			slog.Warn("summary: the snapshot is newer than the report day; the day's events before it are ignored",
				"snapshot", f.Snapshot, "as_of", snap.AsOf, "date", f.Date)
		}
		earliest := f.Window.Start
		for _, it := range snap.Items {
			at := snap.Time(it).UnixMicro()
			earliest = min(earliest, at)
			x := sh.Part(it.SKU, it.LocationID).Item(it.SKU, it.LocationID)
			x.HasOpening, x.OpeningOnHand, x.OpeningAt = true, it.OnHand, at
		}
		sinceAt = earliest
	default:
		slog.Warn("summary: no daily_summary of the day before and no snapshot: every key opens at 0",
			"warehouse", f.Warehouse, "previous", prev.String())
		sinceAt = f.Window.Start
	}
	since(sinceAt)
	sh.SetSince(sinceAt)
	sh.Emit(emit)
	return nil
}

// csvReadFn reads the rows of one range, validates them, and emits them
// pre-aggregated: one Part per key shard. Rows at or after End (they cannot
// change the day) are skipped.
type csvReadFn struct {
	End    int64
	Shards int
	Meter  string

	read, invalid, skipped beam.Counter
	meter                  *Meter
}

func (f *csvReadFn) Setup() {
	f.meter = lookupMeter(f.Meter)
	f.read = beam.NewCounter("nightly", "rows_read")
	f.invalid = beam.NewCounter("nightly", "rows_invalid")
	f.skipped = beam.NewCounter("nightly", "rows_outside_day")
}

func (f *csvReadFn) ProcessElement(ctx context.Context, rg csvsrc.Range, emit func(int, Part)) error {
	cr, err := csvsrc.OpenRange(ctx, rg)
	if err != nil {
		return fmt.Errorf("summary: read csv: %w", err)
	}
	now := time.Now()
	cr.Now = func() time.Time { return now }
	sh := NewSharded(f.Shards)
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
		sh.Part(a.SKU, a.LocationID).AddEvent(&a)
	}
	f.read.Inc(ctx, n)
	f.meter.addBytes(rg.End - rg.Start)
	f.invalid.Inc(ctx, bad)
	f.skipped.Inc(ctx, skipped)
	sh.Emit(emit)
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

func (f *warehouseReadFn) ProcessElement(ctx context.Context, slice int, since int64, emit func(int, Part)) error {
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
	sh := NewSharded(f.Shards)
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

func (f *streamingFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, Part)) error {
	q := fmt.Sprintf(`SELECT sku, location_id, on_hand FROM stock_levels WHERE event_time < %s
QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1`,
		warehouse.TimestampSQL(f.Warehouse, f.End))
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, q)
	if err != nil {
		return fmt.Errorf("summary: read stock_levels: %w", err)
	}
	sh := NewSharded(f.Shards)
	for _, r := range rows {
		sku, loc := warehouse.AsString(r["sku"]), warehouse.AsString(r["location_id"])
		it := sh.Part(sku, loc).Item(sku, loc)
		it.HasStreaming, it.StreamingOnHand = true, warehouse.AsInt(r["on_hand"])
	}
	sh.Emit(emit)
	return nil
}

// historyFn reads the trend window's history from daily_summary: the 27
// report dates before the day (with the day itself, the 28 days of the
// trends). It emits per key the units sold in the last 6 and in all 27 of
// those days and how many of them the key has a row for (one Part per key
// shard, merged with the day's replay), and the whole of each of those
// days for the trend chart. Only those 27 partitions are read.
type historyFn struct {
	Warehouse string
	Date      string // report date, YYYY-MM-DD
	Shards    int
}

// historyBounds returns the first and last report dates historyFn reads,
// and the first of the last 6.
func historyBounds(d civil.Date) (first, last, week civil.Date) {
	return d.AddDays(-(reports.TrendDays - 1)), d.AddDays(-1), d.AddDays(-6)
}

// historyKeysSQL and historyDaysSQL are the same text in DuckDB and in
// GoogleSQL.
const historyKeysSQL = `SELECT sku, location_id,
  SUM(CASE WHEN report_date >= DATE '%[3]s' THEN -sold ELSE 0 END) AS sold_6,
  SUM(-sold) AS sold_27, COUNT(*) AS days
FROM daily_summary
WHERE report_date BETWEEN DATE '%[1]s' AND DATE '%[2]s'
GROUP BY sku, location_id`

const historyDaysSQL = `SELECT report_date, COUNT(*) AS keys, SUM(-sold) AS units_sold,
  SUM(CASE WHEN closing_on_hand < threshold THEN 1 ELSE 0 END) AS keys_below,
  SUM(CASE WHEN closing_on_hand <= 0 THEN 1 ELSE 0 END) AS keys_out
FROM daily_summary
WHERE report_date BETWEEN DATE '%[1]s' AND DATE '%[2]s'
GROUP BY report_date
ORDER BY report_date`

func (f *historyFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, Part), day func(reports.Day)) error {
	d, err := civil.ParseDate(f.Date)
	if err != nil {
		return fmt.Errorf("summary: history: %w", err)
	}
	first, last, week := historyBounds(d)
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, fmt.Sprintf(historyKeysSQL, first, last, week))
	if err != nil {
		return fmt.Errorf("summary: history: read daily_summary %s to %s: %w", first, last, err)
	}
	sh := NewSharded(f.Shards)
	for _, r := range rows {
		sku, loc := warehouse.AsString(r["sku"]), warehouse.AsString(r["location_id"])
		it := sh.Part(sku, loc).Item(sku, loc)
		it.HasHistory = true
		it.Sold6, it.Sold27, it.HistoryDays = warehouse.AsInt(r["sold_6"]), warehouse.AsInt(r["sold_27"]), warehouse.AsInt(r["days"])
	}
	sh.Emit(emit)
	rows, err = warehouse.QueryRows(ctx, f.Warehouse, fmt.Sprintf(historyDaysSQL, first, last))
	if err != nil {
		return fmt.Errorf("summary: history: read daily totals %s to %s: %w", first, last, err)
	}
	for _, r := range rows {
		day(reports.Day{Date: fmt.Sprint(r["report_date"]), Reported: true, Keys: warehouse.AsInt(r["keys"]),
			UnitsSold: warehouse.AsInt(r["units_sold"]), KeysBelow: warehouse.AsInt(r["keys_below"]), KeysOut: warehouse.AsInt(r["keys_out"])})
	}
	return nil
}
