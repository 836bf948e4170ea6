package summary

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/transforms/csvsrc"
)

// dayFile is a generated day of adjustments written to a CSV file: the
// day before yesterday by the clock, so that no row is in the future.
type dayFile struct {
	day    time.Time
	data   string
	path   string
	header string
}

// writeDay generates c's events over one day and writes them to a file.
func writeDay(tb testing.TB, c synth.Config) dayFile {
	tb.Helper()
	d := dayFile{day: clock.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)}
	c.Start, c.Span = d.day, 24*time.Hour
	var buf bytes.Buffer
	if err := synth.Generate(&buf, c); err != nil {
		tb.Fatal(err)
	}
	d.data, d.path = buf.String(), filepath.Join(tb.TempDir(), "day.csv")
	if err := os.WriteFile(d.path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	d.header = d.data[:strings.IndexByte(d.data, '\n')+1]
	return d
}

// rangeOf is the range of the file's rows from byte from to byte to.
func (d dayFile) rangeOf(from, to int) csvsrc.Range {
	return csvsrc.Range{Path: d.path, Header: d.header, Start: int64(from), End: int64(to)}
}

// all is the range of every row of the file.
func (d dayFile) all() csvsrc.Range { return d.rangeOf(len(d.header), len(d.data)) }

// readRange reads every row of rg, validated as of two days after the day,
// into add.
func (d dayFile) readRange(tb testing.TB, rg csvsrc.Range, add func(*event.Adjustment)) {
	tb.Helper()
	r, err := csvsrc.OpenRange(context.Background(), rg)
	if err != nil {
		tb.Fatal(err)
	}
	r.Now = func() time.Time { return d.day.Add(48 * time.Hour) }
	var a event.Adjustment
	for {
		err := r.Next(&a)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
		add(&a)
	}
}

// BenchmarkReadRange is the CSV reader's work on one range (csvReadFn):
// 110,000 rows of 30,000 keys read, buffered and encoded as 16 shards'
// Parts, as an 8 MB range of the nightly benchmark's day is.
func BenchmarkReadRange(b *testing.B) {
	d := writeDay(b, synth.Config{Events: 110_000, SKUs: 5000, Locations: 6, Seed: 1})
	rg := d.all()
	b.SetBytes(int64(len(d.data)))
	b.ReportAllocs()
	for b.Loop() {
		buf := newReadBuffer(16)
		buf.reserve(int(rg.End-rg.Start) / minRowBytes)
		d.readRange(b, rg, buf.add)
		buf.emit(func(_ int, p part) {
			if _, err := encodePart(p); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestReadBundleSharesParts: the ranges of one bundle of csvReadFn share
// their parts, so that a key crosses the shuffle once per bundle; a bundle
// that reaches maxBundleEvents emits what it holds before its end. No
// event is lost or read twice either way.
func TestReadBundleSharesParts(t *testing.T) {
	d := writeDay(t, synth.Config{Events: 3000, SKUs: 50, Locations: 3, Seed: 1})
	half := len(d.data) / 2
	mid := half + strings.IndexByte(d.data[half:], '\n') + 1 // the start of a line
	ranges := []csvsrc.Range{d.rangeOf(len(d.header), mid), d.rangeOf(mid, len(d.data))}
	ctx := context.Background()
	read := func(t *testing.T) (emits, events int) {
		f := &csvReadFn{End: d.day.Add(24 * time.Hour).UnixMicro(), Shards: 4}
		f.Setup()
		emit := func(_ int, p part) {
			emits++
			events += p.Len()
		}
		f.StartBundle(ctx, emit)
		for _, rg := range ranges {
			if err := f.ProcessElement(ctx, rg, emit); err != nil {
				t.Fatal(err)
			}
		}
		f.FinishBundle(ctx, emit)
		return emits, events
	}
	if emits, events := read(t); emits != 4 || events != 3000 {
		t.Errorf("a bundle of two ranges emitted %d parts of %d events, want 4 parts (one per shard) of 3000", emits, events)
	}
	defer func(n int) { maxBundleEvents = n }(maxBundleEvents)
	maxBundleEvents = 1000
	if emits, events := read(t); emits != 8 || events != 3000 {
		t.Errorf("with a bound of 1000 events, two ranges emitted %d parts of %d events, want 8 (4 per range) of 3000", emits, events)
	}
}

// TestReadBufferAsParts: the read buffer's parts are byte for byte what
// adding the same events to parts and encoding them writes.
func TestReadBufferAsParts(t *testing.T) {
	d := writeDay(t, synth.Config{Events: 5000, SKUs: 40, Locations: 4, Seed: 3})
	buf, sh := newReadBuffer(8), newSharded(8)
	d.readRange(t, d.all(), func(a *event.Adjustment) {
		buf.add(a)
		sh.Part(a.SKU, a.LocationID).AddEvent(a)
	})
	want := map[int][]byte{}
	sh.Emit(func(i int, p part) {
		b, err := encodePart(p)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = b
	})
	got := map[int][]byte{}
	buf.emit(func(i int, p part) { got[i] = p.raw })
	if len(got) != len(want) {
		t.Fatalf("%d parts, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(got[i], w) {
			t.Errorf("shard %d: %d bytes differ from the part's %d", i, len(got[i]), len(w))
		}
	}
	if buf.Len() != 0 {
		t.Errorf("%d events left after emit", buf.Len())
	}
}
