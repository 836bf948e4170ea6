package event

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzCSVReader feeds arbitrary bytes to the CSV reader: it must never
// panic, must end, and every bad row must come back as a *RowError with a
// line number and a reason code; rows it accepts must round-trip through
// WriteCSV unchanged in meaning.
func FuzzCSVReader(f *testing.F) {
	f.Add([]byte("event_id,event_time,sku,location_id,reason,quantity,source\ne1,2026-11-24T09:00:00Z,S,L,SOLD,-1,pos\n"))
	f.Add([]byte("\uFEFFevent_id,event_time,sku,location_id,reason,quantity\r\ne1,2026-11-24T09:00:00Z,S,L,COUNTED,3\r\n\"x"))
	f.Add([]byte("sku,event_id\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewCSVReader(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("more rows than bytes")
			}
			var a Adjustment
			err := r.Next(&a)
			if errors.Is(err, io.EOF) {
				return
			}
			var re *RowError
			if errors.As(err, &re) {
				if re.Line < 1 || re.Err == nil || re.Err.Code == "" {
					t.Fatalf("row error without line or code: %#v", re)
				}
				continue
			}
			if err != nil {
				return // the input itself failed (e.g. a line too long)
			}
			if Validate(&a, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)) == nil {
				j, err := MarshalJSON(&a)
				if err != nil {
					t.Fatal(err)
				}
				var back Adjustment
				if err := decodeJSON(j, &back); err != nil || back != a {
					t.Fatalf("accepted row does not round-trip: %+v -> %s -> %+v (%v)", a, j, back, err)
				}
			}
		}
	})
}

// FuzzCSVReaderFastPath reads the same bytes with the line splitter on and
// off (encoding/csv only), whole and one byte at a time (so that lines
// cross the buffer's edge): every row, error and line number must agree.
func FuzzCSVReaderFastPath(f *testing.F) {
	const header = "event_id,event_time,sku,location_id,reason,quantity,source\n"
	for _, body := range []string{
		"e1,2026-11-24T09:00:00Z,S,L,SOLD,-1,pos\n",
		"e1,2026-11-24T09:00:00Z,S,L,SOLD,-1,pos\r\n\r\n\ne2,2026-11-24T09:00:01Z,S,L,COUNTED,3,pos",
		"\"e1\",2026-11-24T09:00:00Z,\"S\nT\",L,SOLD,-1,pos\ne2,2026-11-24T09:00:01Z,S,L,SOLD,2,\n",
		"e1,2026-11-24T09:00:00Z,S\"x,L,SOLD,-1,pos\ne2,2026-11-24T09:00:01Z,S,L,SOLD,2,\n",
		"\"e1,2026-11-24T09:00:00Z,S,L,SOLD,-1,pos\ne2,2026-11-24T09:00:01Z,S,L,SOLD,2,\n",
		"e1, 2026-11-24T09:00:00Z ,S ,L,sold,+1,pos,extra\ne2,x,S,L,SOLD,1,pos\r\n",
		"\"a\"\"b\",2026-11-24T09:00:00Z,S,L,RECEIVED,5,\"p,q\"\n\n",
	} {
		f.Add([]byte(header + body))
	}
	f.Add([]byte("\"event_id\nx\",event_time,sku,location_id,reason,quantity\ne1,2026-11-24T09:00:00Z,S,L,SOLD,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, oneByte := range []bool{false, true} {
			var in io.Reader = bytes.NewReader(data)
			if oneByte {
				in = iotest.OneByteReader(in)
			}
			fast, ferr := NewCSVReader(in, "fuzz.csv")
			slow, serr := NewCSVReader(bytes.NewReader(data), "fuzz.csv")
			if (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
				t.Fatalf("header: fast %v, encoding/csv %v", ferr, serr)
			}
			if ferr != nil {
				return
			}
			slow.noFast = true
			for i := 0; i <= len(data)+1; i++ {
				var fa, sa Adjustment
				fe, se := fast.Next(&fa), slow.Next(&sa)
				if (fe == nil) != (se == nil) || (fe != nil && fe.Error() != se.Error()) {
					t.Fatalf("row %d (one byte at a time: %v): fast %v, encoding/csv %v", i, oneByte, fe, se)
				}
				if fa != sa || fast.Line() != slow.Line() {
					t.Fatalf("row %d (one byte at a time: %v): fast %+v line %d, encoding/csv %+v line %d",
						i, oneByte, fa, fast.Line(), sa, slow.Line())
				}
				var re *RowError
				if fe != nil && !errors.As(fe, &re) {
					break
				}
				if re != nil && re.Raw != se.(*RowError).Raw {
					t.Fatalf("row %d: raw %q against %q", i, re.Raw, se.(*RowError).Raw)
				}
			}
		}
	})
}
