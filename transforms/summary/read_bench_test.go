package summary

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/transforms/csvsrc"
)

// BenchmarkReadRange is the CSV reader's work on one range (csvReadFn):
// 110,000 rows of 30,000 keys read, pre-aggregated into 16 shards' Parts
// and encoded, as an 8 MB range of the nightly benchmark's day is.
func BenchmarkReadRange(b *testing.B) {
	var buf bytes.Buffer
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if err := synth.Generate(&buf, synth.Config{Events: 110_000, SKUs: 5000, Locations: 6, Seed: 1, Start: day, Span: 24 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := csvsrc.NewReader(bytes.NewReader(data), "bench.csv")
		if err != nil {
			b.Fatal(err)
		}
		r.Now = func() time.Time { return day.Add(48 * time.Hour) }
		sh := newSharded(16)
		var a event.Adjustment
		for {
			err := r.Next(&a)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			sh.Part(a.SKU, a.LocationID).AddEvent(&a)
		}
		sh.Emit(func(_ int, p part) {
			if _, err := encodePart(p); err != nil {
				b.Fatal(err)
			}
		})
	}
}
