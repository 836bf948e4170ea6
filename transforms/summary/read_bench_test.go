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
// 110,000 rows of 30,000 keys read, pre-aggregated into 16 shards' Parts
// and encoded, as an 8 MB range of the nightly benchmark's day is.
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
