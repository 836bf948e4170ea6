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

// TestSplitLanes: over two files, the lanes' ranges are the ranges of one
// lane, each in exactly one lane, for every lane count.
func TestSplitLanes(t *testing.T) {
	dir := t.TempDir()
	for i, n := range []int{10, 23} {
		var b strings.Builder
		b.WriteString("event_id,event_time,sku,location_id,reason,quantity,source\n")
		for j := range n {
			fmt.Fprintf(&b, "e%d-%d,2026-11-24T09:00:00Z,S,L,SOLD,-1,pos\n", i, j)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("day%d.csv", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	glob := filepath.Join(dir, "day*.csv")
	ranges := func(lane, lanes int) []Range {
		var out []Range
		f := &splitFn{Glob: glob, ChunkBytes: 100, Lane: lane, Lanes: lanes}
		if err := f.ProcessElement(context.Background(), nil, func(r Range) { out = append(out, r) }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := ranges(0, 1)
	if len(all) < 10 {
		t.Fatalf("%d ranges, want at least 10 to share", len(all))
	}
	for _, lanes := range []int{2, 3, 4, len(all) + 1} {
		var got []Range
		for lane := range lanes {
			r := ranges(lane, lanes)
			if len(r) < len(all)/lanes || len(r) > len(all)/lanes+1 {
				t.Errorf("%d lanes: lane %d has %d of %d ranges", lanes, lane, len(r), len(all))
			}
			got = append(got, r...)
		}
		cmp := func(a, b Range) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
		slices.SortFunc(got, cmp)
		want := slices.Clone(all)
		slices.SortFunc(want, cmp)
		if !slices.Equal(got, want) {
			t.Errorf("%d lanes: ranges %v, want %v", lanes, got, want)
		}
	}
}
