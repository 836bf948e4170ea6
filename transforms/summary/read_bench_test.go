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

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/transforms/csvsrc"
)

// BenchmarkReadRange is the CSV reader's work on one range (csvReadFn):
// 110,000 rows of 30,000 keys read, buffered and encoded as 16 shards'
// Parts, as an 8 MB range of the nightly benchmark's day is.
func BenchmarkReadRange(b *testing.B) {
	var buf bytes.Buffer
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if err := synth.Generate(&buf, synth.Config{Events: 110_000, SKUs: 5000, Locations: 6, Seed: 1, Start: day, Span: 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "day.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	header := buf.String()[:strings.IndexByte(buf.String(), '\n')+1]
	rg := csvsrc.Range{Path: path, Header: header, Start: int64(len(header)), End: int64(buf.Len())}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		r, err := csvsrc.OpenRange(context.Background(), rg)
		if err != nil {
			b.Fatal(err)
		}
		r.Now = func() time.Time { return day.Add(48 * time.Hour) }
		buf := newReadBuffer(16)
		buf.reserve(int(rg.End-rg.Start) / minRowBytes)
		var a event.Adjustment
		for {
			err := r.Next(&a)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			buf.add(&a)
		}
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
	var buf bytes.Buffer
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if err := synth.Generate(&buf, synth.Config{Events: 3000, SKUs: 50, Locations: 3, Seed: 1, Start: day, Span: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "day.csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	header := buf.String()[:strings.IndexByte(buf.String(), '\n')+1]
	half := buf.Len() / 2
	mid := int64(half + strings.IndexByte(buf.String()[half:], '\n') + 1) // the start of a line
	ranges := []csvsrc.Range{{Path: path, Header: header, Start: int64(len(header)), End: mid},
		{Path: path, Header: header, Start: mid, End: int64(buf.Len())}}
	ctx := context.Background()
	read := func(t *testing.T) (emits, events int) {
		f := &csvReadFn{End: day.Add(24 * time.Hour).UnixMicro(), Shards: 4}
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
	var csv bytes.Buffer
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if err := synth.Generate(&csv, synth.Config{Events: 5000, SKUs: 40, Locations: 4, Seed: 3, Start: day, Span: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "day.csv")
	if err := os.WriteFile(path, csv.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	header := csv.String()[:strings.IndexByte(csv.String(), '\n')+1]
	cr, err := csvsrc.OpenRange(context.Background(), csvsrc.Range{Path: path, Header: header, Start: int64(len(header)), End: int64(csv.Len())})
	if err != nil {
		t.Fatal(err)
	}
	cr.Now = func() time.Time { return day.Add(48 * time.Hour) }
	buf, sh := newReadBuffer(8), newSharded(8)
	var a event.Adjustment
	for {
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		buf.add(&a)
		sh.Part(a.SKU, a.LocationID).AddEvent(&a)
	}
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
