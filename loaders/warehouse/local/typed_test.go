package local_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// TestTypedWritersCoverEveryTable checks that the rows of every table are
// written by a typed writer: a table added without one would be written
// row by row through reflection.
func TestTypedWritersCoverEveryTable(t *testing.T) {
	for _, tb := range warehouse.Tables {
		if !local.HasTypedWriter(tb.RowType) {
			t.Errorf("table %s: no typed writer for %v (add it to typedWriters in local.go)", tb.Name, tb.RowType)
		}
	}
}

// sampleRows returns n rows of table tb, every field set from the row's
// index: empty strings, NULL pointers, nil and empty byte slices, negative
// and extreme numbers, times with nanoseconds, in another zone and the zero
// time among them. Dead letters have oversized payloads, payloads bounded
// before, nil and empty ones.
func sampleRows(t *testing.T, tb *warehouse.Table, n int) []any {
	t.Helper()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	out := make([]any, n)
	for i := range out {
		row := reflect.New(tb.RowType).Elem()
		for j := range row.NumField() {
			f := row.Field(j)
			ptr := f.Kind() == reflect.Pointer
			if ptr {
				if (i+j)%3 == 0 {
					continue // NULL
				}
				f.Set(reflect.New(f.Type().Elem()))
				f = f.Elem()
			}
			switch v := f.Addr().Interface().(type) {
			case *string:
				switch (i + j) % 5 {
				case 0:
				case 1:
					*v = fmt.Sprintf("é✓ %d\x00tab\t", i)
				default:
					*v = fmt.Sprintf("%s-%d", tb.RowType.Field(j).Name, i%(j+2))
				}
			case *int64:
				switch i % 11 {
				case 3:
					*v = math.MinInt64
				case 4:
					*v = math.MaxInt64
				default:
					*v = int64(i*(j+1)) - 50
				}
			case *float64:
				switch i % 13 {
				case 3:
					*v = math.Inf(-1)
				case 4:
					*v = math.Copysign(0, -1)
				default:
					*v = float64(i)*1.25 - float64(j)/3
				}
			case *bool:
				*v = (i+j)%2 == 0
			case *[]byte:
				switch i % 5 {
				case 0:
				case 1:
					*v = []byte{}
				case 2:
					if i%50 == 2 {
						*v = bytes.Repeat([]byte{byte(i), 0, 0xff}, warehouse.MaxPayloadBytes/3+1+i)
						break
					}
					fallthrough
				default:
					*v = bytes.Repeat([]byte{byte(i), byte(j), 0}, i%700)
				}
			case *time.Time:
				at := base.Add(time.Duration(i)*time.Minute + time.Duration(j)*time.Hour + time.Duration(i*1237)*time.Nanosecond)
				switch {
				case strings.Contains(tb.RowType.Field(j).Tag.Get("parquet"), "millisecond"):
					at = time.Date(2026, 3, 1+i%3, 0, 0, 0, 0, time.UTC) // a DATE
				case i%29 == 7 && !ptr:
					at = time.Time{}
				case i%4 == 1:
					at = at.In(zone)
				}
				*v = at
			default:
				t.Fatalf("table %s: sampleRows fills no field of type %v", tb.Name, f.Type())
			}
		}
		if dl, ok := row.Addr().Interface().(*warehouse.DeadLetterRow); ok && i%4 != 3 {
			// Not bounded yet: AnyRows bounds it.
			dl.PayloadBytes, dl.PayloadSHA256 = 0, ""
		}
		out[i] = row.Interface()
	}
	return out
}

// TestTypedWriteMatchesReflective writes the same rows of every table with
// the typed writer and with the reflective one and checks that the files
// hold the same schema and the same values, row by row.
func TestTypedWriteMatchesReflective(t *testing.T) {
	for _, tb := range warehouse.Tables {
		for _, n := range []int{1, 7, 3000} {
			t.Run(fmt.Sprintf("%s/%d", tb.Name, n), func(t *testing.T) {
				rows, err := warehouse.AnyRows(tb.Name, sampleRows(t, tb, n))
				if err != nil {
					t.Fatal(err)
				}
				dir := t.TempDir()
				old, err := local.WriteReflective(filepath.Join(dir, "reflective"), rows)
				if err != nil {
					t.Fatal(err)
				}
				typed, err := local.WriteTyped(filepath.Join(dir, "typed"), rows)
				if err != nil {
					t.Fatal(err)
				}
				compareParquet(t, tb, filepath.Join(dir, "reflective", old), filepath.Join(dir, "typed", typed), n)
			})
		}
	}
}

// TestTypedWriteDeadLetters writes dead letters through the warehouse
// (typed) and checks what it reads back: payloads cut to MaxPayloadBytes
// with the original's length and hash, rows bounded before kept, NULL
// publish times, nil and empty payloads.
func TestTypedWriteDeadLetters(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	big := bytes.Repeat([]byte("x"), warehouse.MaxPayloadBytes+10)
	in := []warehouse.DeadLetterRow{
		{Reason: "invalid_json", Payload: big, PublishTime: &at, Stage: "consume", DeadLetteredAt: at},
		{Reason: "invalid_json", Payload: []byte("cut before"), PayloadBytes: 1 << 20, PayloadSHA256: "abc", DeadLetteredAt: at},
		{Reason: "invalid_field", Payload: nil, DeadLetteredAt: at},
		{Reason: "invalid_field", Payload: []byte{}, DeadLetteredAt: at},
	}
	rows := warehouse.Rows(in)
	if len(in[0].Payload) != warehouse.MaxPayloadBytes+10 || in[0].PayloadSHA256 != "" {
		t.Fatal("Rows modified the caller's rows")
	}
	dir := t.TempDir()
	name, err := local.WriteTyped(dir, rows)
	if err != nil {
		t.Fatal(err)
	}
	got := readRows(t, filepath.Join(dir, name), rows.Table())
	if len(got) != len(in) {
		t.Fatalf("read %d rows, want %d", len(got), len(in))
	}
	d0 := got[0].(warehouse.DeadLetterRow)
	var want0 warehouse.DeadLetterRow
	want0.Payload = big
	warehouse.BoundPayload(&want0)
	if !bytes.Equal(d0.Payload, big[:warehouse.MaxPayloadBytes]) || d0.PayloadBytes != int64(len(big)) || d0.PayloadSHA256 != want0.PayloadSHA256 {
		t.Errorf("oversized payload read back as %d bytes, payload_bytes %d, sha %q; want %d, %d, %q",
			len(d0.Payload), d0.PayloadBytes, d0.PayloadSHA256, warehouse.MaxPayloadBytes, len(big), want0.PayloadSHA256)
	}
	if d0.PublishTime == nil || !d0.PublishTime.Equal(at.Truncate(time.Microsecond)) || !d0.DeadLetteredAt.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("times read back as %v, %v; want %v", d0.PublishTime, d0.DeadLetteredAt, at.Truncate(time.Microsecond))
	}
	if d1 := got[1].(warehouse.DeadLetterRow); string(d1.Payload) != "cut before" || d1.PayloadBytes != 1<<20 || d1.PayloadSHA256 != "abc" {
		t.Errorf("row bounded before read back as %q, %d, %q", d1.Payload, d1.PayloadBytes, d1.PayloadSHA256)
	}
	if d2 := got[2].(warehouse.DeadLetterRow); len(d2.Payload) != 0 || d2.PublishTime != nil || d2.PayloadBytes != 0 || d2.PayloadSHA256 != "" {
		t.Errorf("row without payload read back as %+v", d2)
	}
	empty := warehouse.DeadLetterRow{Payload: []byte{}}
	warehouse.BoundPayload(&empty)
	if d3 := got[3].(warehouse.DeadLetterRow); len(d3.Payload) != 0 || d3.PayloadBytes != 0 || d3.PayloadSHA256 != empty.PayloadSHA256 {
		t.Errorf("row with an empty payload read back as %+v, want sha %q", d3, empty.PayloadSHA256)
	}
}

// compareParquet checks that the Parquet files a and b have equal schemas,
// n rows each, and equal rows, both as Parquet values (with their
// repetition and definition levels) and decoded into tb's row struct; and
// that they are the same bytes unless a column takes more than one page
// (the typed writer checks the page size after every 64 rows, the
// reflective one after every row, so a full page can end on another row),
// in which case their row groups and column chunks (encodings, number of
// values, statistics) must still match.
func compareParquet(t *testing.T, tb *warehouse.Table, a, b string, n int) {
	t.Helper()
	ra, sa := readParquetRows(t, a)
	rb, sb := readParquetRows(t, b)
	if !parquet.EqualNodes(sa, sb) || sa.Name() != sb.Name() {
		t.Fatalf("schemas differ:\n%v\n%v", sa, sb)
	}
	if len(ra) != n || len(rb) != n {
		t.Fatalf("files hold %d and %d rows, want %d", len(ra), len(rb), n)
	}
	for i := range ra {
		if !ra[i].Equal(rb[i]) {
			t.Fatalf("row %d differs:\nreflective %v\ntyped      %v", i, ra[i], rb[i])
		}
	}
	if da, db := readRows(t, a, tb), readRows(t, b, tb); !reflect.DeepEqual(da, db) {
		t.Fatal("rows decoded from the two files differ")
	}
	if bytes.Equal(readFile(t, a), readFile(t, b)) {
		return
	}
	ma, pa := fileLayout(t, a)
	mb, pb := fileLayout(t, b)
	if pa == 1 && pb == 1 {
		t.Fatal("the files differ though every column takes one page")
	}
	if len(ma.RowGroups) != len(mb.RowGroups) {
		t.Fatalf("%d and %d row groups", len(ma.RowGroups), len(mb.RowGroups))
	}
	for i, rg := range ma.RowGroups {
		if rg.NumRows != mb.RowGroups[i].NumRows {
			t.Fatalf("row group %d: %d and %d rows", i, rg.NumRows, mb.RowGroups[i].NumRows)
		}
		for j, c := range rg.Columns {
			ca, cb := c.MetaData, mb.RowGroups[i].Columns[j].MetaData
			if !reflect.DeepEqual(ca.PathInSchema, cb.PathInSchema) || ca.Type != cb.Type || ca.Codec != cb.Codec ||
				!reflect.DeepEqual(ca.Encoding, cb.Encoding) || ca.NumValues != cb.NumValues || !reflect.DeepEqual(ca.Statistics, cb.Statistics) {
				t.Fatalf("row group %d column %v differs:\n%+v\n%+v", i, ca.PathInSchema, ca, cb)
			}
		}
	}
}

// fileLayout returns the metadata of the Parquet file name and the largest
// number of pages of one of its column chunks.
func fileLayout(t *testing.T, name string) (*format.FileMetaData, int) {
	t.Helper()
	raw := readFile(t, name)
	f, err := parquet.OpenFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for _, rg := range f.RowGroups() {
		for _, cc := range rg.ColumnChunks() {
			oi, err := cc.OffsetIndex()
			if err != nil {
				t.Fatal(err)
			}
			most = max(most, oi.NumPages())
		}
	}
	return f.Metadata(), most
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readParquetRows returns the rows of the Parquet file name and its schema.
func readParquetRows(t *testing.T, name string) ([]parquet.Row, *parquet.Schema) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := parquet.NewReader(f)
	defer r.Close()
	var out []parquet.Row
	buf := make([]parquet.Row, 100)
	for {
		k, err := r.ReadRows(buf)
		for _, row := range buf[:k] {
			out = append(out, row.Clone())
		}
		if errors.Is(err, io.EOF) {
			return out, r.Schema()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// readRows returns the rows of the Parquet file name decoded into tb's row
// struct.
func readRows(t *testing.T, name string, tb *warehouse.Table) []any {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := parquet.NewReader(f, parquet.SchemaOf(reflect.New(tb.RowType).Interface()))
	defer r.Close()
	var out []any
	for {
		row := reflect.New(tb.RowType)
		if err := r.Read(row.Interface()); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, row.Elem().Interface())
	}
}
