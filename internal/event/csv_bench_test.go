package event

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// BenchmarkCSVReader reads 100,000 rows of 30,000 keys, as the nightly
// job's reader does.
func BenchmarkCSVReader(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("event_id,event_time,sku,location_id,reason,quantity,source\n")
	for i := range 100_000 {
		fmt.Fprintf(&buf, "evt-20261124-%08d,2026-11-24T%02d:%02d:%02d.%06dZ,SKU-%05d,LOC-%d,SOLD,-%d,pos-%d\n",
			i, i/3600%24, i/60%60, i%60, i%1000000, i*7919%5000, i%6, 1+i%5, i%3)
	}
	data := buf.Bytes()
	for _, fast := range []bool{true, false} {
		name := "lines"
		if !fast {
			name = "encoding-csv"
		}
		b.Run(name, func(b *testing.B) { benchCSV(b, data, fast) })
	}
}

func benchCSV(b *testing.B, data []byte, fast bool) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewCSVReader(bytes.NewReader(data), "bench.csv")
		if err != nil {
			b.Fatal(err)
		}
		r.noFast = !fast
		var a Adjustment
		for {
			err := r.Next(&a)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
