package event

import (
	"bytes"
	"errors"
	"io"
	"testing"
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
				if err := DecodeJSON(j, &back); err != nil || back != a {
					t.Fatalf("accepted row does not round-trip: %+v -> %s -> %+v (%v)", a, j, back, err)
				}
			}
		}
	})
}
