package reports

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomRows returns n rows whose strings and floats reach every branch of
// appendRowJSON: plain and escaped strings, invalid UTF-8, integral,
// fractional, tiny and huge floats, nil and set pointers.
func randomRows(rng *rand.Rand, n int) []Row {
	strs := []string{"SKU-1", "", "a\"b", `back\slash`, "<tag>&", "tab\there", "ünï", "\xff\xfe", "日本", "line\nbreak", "\u2028", "~"}
	floats := []float64{0, 1830, -0.0, 1.5, 1e-7, 1.234e-9, 1e21, 3e22, 123456789.125, 1e20, 0.1, 2.0 / 3,
		math.SmallestNonzeroFloat64, math.MaxFloat64, -1e-6, 1e-6}
	rows := make([]Row, n)
	for i := range rows {
		x := &rows[i]
		pick := func() string {
			if rng.IntN(3) > 0 {
				return strs[0]
			}
			return strs[rng.IntN(len(strs))]
		}
		fl := func() float64 {
			if rng.IntN(2) == 0 {
				return floats[rng.IntN(len(floats))]
			}
			return math.Float64frombits(rng.Uint64())
		}
		x.SKU, x.LocationID = pick(), pick()
		for _, p := range []*int64{&x.OpeningOnHand, &x.ClosingOnHand, &x.Received, &x.Sold, &x.Returned, &x.Damaged,
			&x.Adjusted, &x.TransferIn, &x.TransferOut, &x.CountedDelta, &x.NetChange, &x.MinOnHand, &x.Events,
			&x.AlertsRaised, &x.Threshold, &x.Sold7d, &x.Sold28d} {
			*p = rng.Int64() >> rng.IntN(64)
			if rng.IntN(2) == 0 {
				*p = -*p
			}
		}
		x.MinutesOutOfStock = fl()
		if rng.IntN(2) == 0 {
			v := fl()
			x.DaysOfCover = &v
		}
		if rng.IntN(2) == 0 {
			v := rng.Int64()
			x.StreamingOnHand = &v
		}
		x.Reconciled = rng.IntN(2) == 0
	}
	return rows
}

// TestWriteJSONAsEncodingJSON checks that WriteJSON writes exactly what encoding/json does, and fails where it does.
func TestWriteJSONAsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]Row{"nil": nil, "empty": {}, "sample": sample().Rows}
	for i := range 200 {
		cases[strings.Repeat("r", 1+i%3)+string(rune('a'+i%26))+strings.Repeat("x", i)] = randomRows(rng, 1+rng.IntN(20))
	}
	for name, rows := range cases {
		r := sample()
		r.Rows = rows
		// The other lists of rows: nil, empty, or some of the random ones.
		for _, l := range []*[]Row{&r.TopMovers, &r.StockOuts, &r.BelowThreshold, &r.Mismatches} {
			switch rng.IntN(4) {
			case 0:
				*l = nil
			case 1:
				*l = []Row{}
			case 2:
				*l = rows[:rng.IntN(len(rows)+1)]
			}
		}
		var got, want bytes.Buffer
		gotErr := WriteJSON(&got, r)
		wantErr := writeJSONEncoder(&want, r)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%.20s: WriteJSON error %v, encoding/json error %v", name, gotErr, wantErr)
		}
		if wantErr == nil && !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%.20s: WriteJSON differs from encoding/json:\n%s\nwant:\n%s", name, got.Bytes(), want.Bytes())
		}
	}
}

func benchReport(b *testing.B) *Report {
	rng := rand.New(rand.NewPCG(3, 4))
	r := sample()
	r.Rows = make([]Row, 30000)
	r.Mismatches = r.Rows // as on a day without streaming stock
	for i := range r.Rows {
		x := &r.Rows[i]
		x.SKU, x.LocationID = "SKU-"+strings.Repeat("7", 5), "LOC-3"
		x.OpeningOnHand, x.ClosingOnHand, x.Sold, x.Events = rng.Int64N(500), rng.Int64N(500), -rng.Int64N(100), rng.Int64N(60)
		x.MinutesOutOfStock = float64(rng.IntN(1440)) / 7
		if i%2 == 0 {
			v := rng.Float64() * 30
			x.DaysOfCover = &v
		}
	}
	b.ResetTimer()
	b.ReportAllocs()
	return r
}

// BenchmarkWriteJSON/own against BenchmarkWriteJSON/encoding-json is the
// speed-up of WriteJSON on a 30,000-key day.
func BenchmarkWriteJSON(b *testing.B) {
	for _, c := range []struct {
		name  string
		write func(io.Writer, *Report) error
	}{{"own", WriteJSON}, {"encoding-json", writeJSONEncoder}} {
		b.Run(c.name, func(b *testing.B) {
			r := benchReport(b)
			for b.Loop() {
				var buf bytes.Buffer
				if err := c.write(&buf, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
