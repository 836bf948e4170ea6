package nightly

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"   // gs:// paths
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/objects"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/summary"
)

func init() {
	register.DoFn4x1[context.Context, []byte, func(int, summary.Part), func(int64), error](&openingFn{})
	register.DoFn3x1[context.Context, []byte, func(csvRange), error](&csvSplitFn{})
	register.DoFn4x1[context.Context, csvRange, int64, func(int, summary.Part), error](&csvReadFn{})
	register.DoFn2x0[[]byte, func(int)](&sliceFn{})
	register.DoFn4x1[context.Context, int, int64, func(int, summary.Part), error](&warehouseReadFn{})
	register.DoFn3x1[context.Context, []byte, func(int, summary.Part), error](&streamingFn{})
	register.Emitter2[int, summary.Part]()
	register.Emitter1[int64]()
	register.Emitter1[csvRange]()
	register.Emitter1[int]()
	beam.RegisterType(reflectTypeOf[csvRange]())
}

// isBigQuery reports whether a warehouse URI is BigQuery (GoogleSQL) rather
// than the local DuckDB warehouse.
func isBigQuery(uri string) bool { return strings.HasPrefix(uri, "bq://") }

// timestampSQL is a TIMESTAMP literal of t in the warehouse's dialect.
func timestampSQL(uri string, micros int64) string {
	s := time.UnixMicro(micros).UTC().Format("2006-01-02 15:04:05.999999") + "+00"
	if isBigQuery(uri) {
		return "TIMESTAMP '" + s + "'"
	}
	return "TIMESTAMPTZ '" + s + "'"
}

// openingFn emits the opening stock of every key known before the day, and
// the earliest event time that can still change it: the start of the day
// after a previous daily_summary, else the snapshot's as_of.
type openingFn struct {
	Warehouse string
	Snapshot  string
	Date      string // report date, YYYY-MM-DD
	Window    summary.Window
	Shards    int
}

func (f *openingFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, summary.Part), since func(int64)) error {
	d, err := civil.ParseDate(f.Date)
	if err != nil {
		return fmt.Errorf("nightly: opening: %w", err)
	}
	prev := d.AddDays(-1)
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, fmt.Sprintf(
		"SELECT sku, location_id, closing_on_hand FROM daily_summary WHERE report_date = DATE '%s'", prev))
	if err != nil {
		return fmt.Errorf("nightly: opening: read daily_summary %s: %w", prev, err)
	}
	sh := summary.NewSharded(f.Shards)
	switch {
	case len(rows) > 0:
		// The previous closing is the stock just before the day: an event
		// at midnight belongs to the day.
		at := f.Window.Start - 1
		for _, r := range rows {
			sku, loc := asString(r["sku"]), asString(r["location_id"])
			it := sh.Part(sku, loc).Item(sku, loc)
			it.HasOpening, it.OpeningOnHand, it.OpeningAt = true, asInt(r["closing_on_hand"]), at
		}
		since(f.Window.Start)
	case f.Snapshot != "":
		snap, err := snapshot.Read(ctx, f.Snapshot)
		if err != nil {
			return fmt.Errorf("nightly: opening: %w", err)
		}
		if snap.AsOf.UnixMicro() >= f.Window.End {
			slog.Warn("nightly: the snapshot is newer than the report day; the day's events before it are ignored",
				"snapshot", f.Snapshot, "as_of", snap.AsOf, "date", f.Date)
		}
		earliest := f.Window.Start
		for _, it := range snap.Items {
			at := snap.Time(it).UnixMicro()
			earliest = min(earliest, at)
			x := sh.Part(it.SKU, it.LocationID).Item(it.SKU, it.LocationID)
			x.HasOpening, x.OpeningOnHand, x.OpeningAt = true, it.OnHand, at
		}
		since(earliest)
	default:
		slog.Warn("nightly: no daily_summary of the day before and no snapshot: every key opens at 0",
			"warehouse", f.Warehouse, "previous", prev.String())
		since(f.Window.Start)
	}
	sh.Emit(emit)
	return nil
}

func asString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

// csvRange is a byte range of a CSV file: the rows that start in
// [Start, End), with the file's header line.
type csvRange struct {
	Path       string
	Header     string
	Start, End int64
}

// csvSplitFn lists the files of Glob and splits each into ranges of about
// ChunkBytes.
type csvSplitFn struct {
	Glob       string
	ChunkBytes int64
}

func (f *csvSplitFn) ProcessElement(ctx context.Context, _ []byte, emit func(csvRange)) error {
	fs, err := filesystem.New(ctx, f.Glob)
	if err != nil {
		return fmt.Errorf("nightly: input %s: %w", f.Glob, err)
	}
	defer fs.Close()
	files, err := fs.List(ctx, f.Glob)
	if err != nil {
		return fmt.Errorf("nightly: list %s: %w", f.Glob, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("nightly: input %s: no such file", f.Glob)
	}
	for _, name := range files {
		size, err := fs.Size(ctx, name)
		if err != nil {
			return fmt.Errorf("nightly: size of %s: %w", name, err)
		}
		r, err := objects.Open(ctx, name)
		if err != nil {
			return fmt.Errorf("nightly: %w", err)
		}
		header, err := bufio.NewReader(r).ReadString('\n')
		r.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("nightly: read header of %s: %w", name, err)
		}
		for start := int64(len(header)); start < size; start += f.ChunkBytes {
			emit(csvRange{Path: name, Header: header, Start: start, End: min(start+f.ChunkBytes, size)})
		}
	}
	return nil
}

// csvReadFn reads the rows of one range, validates them, and emits them
// pre-aggregated: one Part per key shard. Rows at or after End, or before
// since (they cannot change the day), are skipped.
type csvReadFn struct {
	End    int64
	Shards int

	read, invalid, skipped beam.Counter
}

func (f *csvReadFn) Setup() {
	f.read = beam.NewCounter("nightly", "rows_read")
	f.invalid = beam.NewCounter("nightly", "rows_invalid")
	f.skipped = beam.NewCounter("nightly", "rows_outside_day")
}

func (f *csvReadFn) ProcessElement(ctx context.Context, rg csvRange, since int64, emit func(int, summary.Part)) error {
	data, err := readRange(ctx, rg)
	if err != nil {
		return err
	}
	cr, err := event.NewCSVReader(io.MultiReader(strings.NewReader(rg.Header), bytes.NewReader(data)), rg.Path)
	if err != nil {
		return fmt.Errorf("nightly: %w", err)
	}
	now := time.Now()
	sh := summary.NewSharded(f.Shards)
	var a event.Adjustment
	var n, bad, skipped int64
	for {
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = event.Validate(&a, now)
		}
		if err != nil {
			var inv *event.Invalid
			if !errors.As(err, &inv) {
				return fmt.Errorf("nightly: read %s: %w", rg.Path, err)
			}
			if bad < 5 {
				slog.Warn("nightly: invalid adjustment skipped", "file", rg.Path, "error", err)
			}
			bad++
			continue
		}
		n++
		if a.EventTime >= f.End || a.EventTime < since {
			skipped++
			continue
		}
		sh.Part(a.SKU, a.LocationID).AddEvent(&a)
	}
	f.read.Inc(ctx, n)
	Progress.Bytes.Add(rg.End - rg.Start)
	f.invalid.Inc(ctx, bad)
	f.skipped.Inc(ctx, skipped)
	sh.Emit(emit)
	return nil
}

// readRange returns the bytes of the rows that start in [Start, End): it
// skips the partial row at Start (the previous range reads it) and reads
// past End to the end of the last row.
func readRange(ctx context.Context, rg csvRange) ([]byte, error) {
	// objects reads local files and GCS (honouring STORAGE_EMULATOR_HOST);
	// a local file seeks, a GCS object is read up to the range.
	r, err := objects.Open(ctx, rg.Path)
	if err != nil {
		return nil, fmt.Errorf("nightly: %w", err)
	}
	defer r.Close()
	// Start one byte early: if that byte is a newline, a row starts at Start.
	begin := rg.Start - 1
	if sk, ok := r.(io.Seeker); ok {
		_, err = sk.Seek(begin, io.SeekStart)
	} else {
		_, err = io.CopyN(io.Discard, r, begin)
	}
	if err != nil {
		return nil, fmt.Errorf("nightly: seek %s to %d: %w", rg.Path, begin, err)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	skip, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("nightly: read %s: %w", rg.Path, err)
	}
	pos := begin + int64(len(skip))
	for errors.Is(err, bufio.ErrBufferFull) { // a very long row
		skip, err = br.ReadSlice('\n')
		pos += int64(len(skip))
	}
	data := make([]byte, 0, rg.End-rg.Start+4096)
	for pos < rg.End {
		line, err := br.ReadSlice('\n')
		data = append(data, line...)
		pos += int64(len(line))
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("nightly: read %s: %w", rg.Path, err)
		}
	}
	return data, nil
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

	read beam.Counter
}

func (f *warehouseReadFn) Setup() { f.read = beam.NewCounter("nightly", "rows_read") }

func (f *warehouseReadFn) ProcessElement(ctx context.Context, slice int, since int64, emit func(int, summary.Part)) error {
	hash := fmt.Sprintf("hash(sku || '|' || location_id) %% %d = %d", f.Slices, slice)
	if isBigQuery(f.Warehouse) {
		hash = fmt.Sprintf("MOD(ABS(FARM_FINGERPRINT(CONCAT(sku, '|', location_id))), %d) = %d", f.Slices, slice)
	}
	q := fmt.Sprintf(`SELECT event_id, sku, location_id, reason, quantity, event_time FROM adjustments
WHERE event_time >= %s AND event_time < %s AND status != 'DUPLICATE' AND %s`,
		timestampSQL(f.Warehouse, since), timestampSQL(f.Warehouse, f.End), hash)
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, q)
	if err != nil {
		return fmt.Errorf("nightly: read adjustments slice %d: %w", slice, err)
	}
	sh := summary.NewSharded(f.Shards)
	var a event.Adjustment
	for _, r := range rows {
		reason, ok := event.ParseReason(asString(r["reason"]))
		if !ok {
			return fmt.Errorf("nightly: adjustments: event %v has reason %v", r["event_id"], r["reason"])
		}
		t, _ := r["event_time"].(time.Time)
		a = event.Adjustment{EventID: asString(r["event_id"]), SKU: asString(r["sku"]),
			LocationID: asString(r["location_id"]), Reason: reason, Quantity: asInt(r["quantity"]),
			EventTime: t.UnixMicro()}
		sh.Part(a.SKU, a.LocationID).AddEvent(&a)
	}
	f.read.Inc(ctx, int64(len(rows)))
	Progress.Rows.Add(int64(len(rows)))
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

func (f *streamingFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, summary.Part)) error {
	q := fmt.Sprintf(`SELECT sku, location_id, on_hand FROM stock_levels WHERE event_time < %s
QUALIFY ROW_NUMBER() OVER (PARTITION BY sku, location_id ORDER BY processed_at DESC, event_time DESC) = 1`,
		timestampSQL(f.Warehouse, f.End))
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, q)
	if err != nil {
		return fmt.Errorf("nightly: read stock_levels: %w", err)
	}
	sh := summary.NewSharded(f.Shards)
	for _, r := range rows {
		sku, loc := asString(r["sku"]), asString(r["location_id"])
		it := sh.Part(sku, loc).Item(sku, loc)
		it.HasStreaming, it.StreamingOnHand = true, asInt(r["on_hand"])
	}
	sh.Emit(emit)
	return nil
}
