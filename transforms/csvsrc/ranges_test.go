package csvsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/event"
)

// rows reads r to the end: the event_id of each valid row, "bad:LINE:CODE"
// for each bad one.
func rows(t *testing.T, r *Reader) []string {
	t.Helper()
	var out []string
	for {
		var a event.Adjustment
		err := r.Next(&a)
		if errors.Is(err, io.EOF) {
			return out
		}
		var inv *event.Invalid
		switch {
		case errors.As(err, &inv):
			out = append(out, fmt.Sprintf("bad:%s:%s", a.EventID, inv.Code))
		case err != nil:
			t.Fatalf("line %d: %v", r.line(), err)
		default:
			out = append(out, a.EventID)
		}
	}
}

// TestRangesReadEveryRowOnce splits a file with bad and very long rows at
// many chunk sizes: the ranges together read each row exactly once, as the
// whole file read in order does.
func TestRangesReadEveryRowOnce(t *testing.T) {
	t.Run("short rows", func(t *testing.T) { testRanges(t, 0, []int64{3, 7, 64, 100, 4096, 1 << 30}) })
	t.Run("a very long row", func(t *testing.T) { testRanges(t, 1<<20+100, []int64{1 << 16, 1 << 20, 1 << 30}) })
}

// testRanges writes a file whose row 21 has a source of long bytes and
// reads it in ranges of each of chunks.
func testRanges(t *testing.T, long int, chunks []int64) {
	var b strings.Builder
	b.WriteString("event_id,event_time,sku,location_id,reason,quantity,source\n")
	for i := range 40 {
		switch {
		case i == 7:
			fmt.Fprintf(&b, "e%d,2026-11-24T01:00:00Z,SKU-1,WH-1,SOLD,lots,pos\n", i) // cannot be decoded
		case i == 13:
			fmt.Fprintf(&b, "e%d,2026-11-24T01:00:00Z,SKU-1,WH-1,SOLD,5,pos\n", i) // fails Validate: wrong sign
		case i == 21 && long > 0:
			fmt.Fprintf(&b, "e%d,2026-11-24T01:00:00Z,SKU-1,WH-1,SOLD,-1,%s\n", i, strings.Repeat("x", long))
		default:
			fmt.Fprintf(&b, "e%d,2026-11-24T01:%02d:00Z,SKU-%d,WH-1,RECEIVED,%d,wms\n", i, i, i%3, i+1)
		}
	}
	path := filepath.Join(t.TempDir(), "adj.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	whole, err := newReader(strings.NewReader(b.String()), path)
	if err != nil {
		t.Fatal(err)
	}
	want := rows(t, whole)
	if len(want) != 40 || want[7] != "bad:e7:"+event.CodeBadQuantity || !strings.HasPrefix(want[13], "bad:e13:") {
		t.Fatalf("whole file read as %q", want)
	}
	ctx := context.Background()
	for _, chunk := range chunks {
		var ranges []Range
		fn := &splitFn{Glob: path, ChunkBytes: chunk}
		if err := fn.ProcessElement(ctx, nil, func(r Range) { ranges = append(ranges, r) }); err != nil {
			t.Fatalf("chunk %d: split: %v", chunk, err)
		}
		var got []string
		for _, rg := range ranges {
			r, err := OpenRange(ctx, rg)
			if err != nil {
				t.Fatalf("chunk %d: open %+v: %v", chunk, rg, err)
			}
			got = append(got, rows(t, r)...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("chunk %d: %d ranges read %d rows, want %d:\n got %q\nwant %q", chunk, len(ranges), len(got), len(want), got, want)
		}
	}
}

func TestSplitNoSuchFile(t *testing.T) {
	fn := &splitFn{Glob: filepath.Join(t.TempDir(), "*.csv"), ChunkBytes: 10}
	err := fn.ProcessElement(context.Background(), nil, func(Range) { t.Error("a range of no file") })
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("split of an empty glob: %v", err)
	}
}
