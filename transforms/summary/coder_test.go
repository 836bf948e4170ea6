package summary

import (
	"reflect"
	"testing"
	"time"

	"github.com/inventory-events/inventory/reports"
)

// fullRow returns a Row whose every field is set to a distinct non-zero
// value, found by reflection, so that a field added to reports.Row and
// forgotten by the coder makes the round trips below fail.
func fullRow(seed int64) reports.Row {
	var r reports.Row
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f, n := v.Field(i), seed*100+int64(i)+1
		switch f.Kind() {
		case reflect.String:
			f.SetString("s" + string(rune('A'+i)))
		case reflect.Int64:
			f.SetInt(-n)
		case reflect.Float64:
			f.SetFloat(float64(n) + 0.25)
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Pointer:
			p := reflect.New(f.Type().Elem())
			switch p.Elem().Kind() {
			case reflect.Int64:
				p.Elem().SetInt(n)
			case reflect.Float64:
				p.Elem().SetFloat(float64(n) / 3)
			default:
				panic("fullRow: a pointer field of an unknown kind: " + f.Type().String())
			}
			f.Set(p)
		default:
			panic("fullRow: a field of an unknown kind: " + f.Type().String())
		}
	}
	return r
}

func TestRowCoderKeepsEveryField(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 30, 0, 123456000, time.UTC)
	series := &reports.Series{SKU: "S", LocationID: "L", Threshold: 7,
		Points: []reports.Point{{Time: at, OnHand: 5}, {Time: at.Add(time.Minute), OnHand: -2}}}
	for name, s := range map[string]summary{
		"full":       {Row: fullRow(1), Series: series, Duplicates: 3, Superseded: 4},
		"zero":       {},
		"no points":  {Row: fullRow(2), Series: &reports.Series{SKU: "S", Points: []reports.Point{}}},
		"nil points": {Row: fullRow(3), Series: &reports.Series{SKU: "S"}},
	} {
		enc, err := encodeSummary(s)
		if err != nil {
			t.Fatalf("%s: encode: %v", name, err)
		}
		got, err := decodeSummary(enc)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, s)
		}
		if len(enc) > 0 {
			if _, err := decodeSummary(enc[:len(enc)-1]); err == nil {
				t.Errorf("%s: a truncated Summary decoded", name)
			}
		}
	}
	g := Gather{Rows: []reports.Row{fullRow(1), {}, fullRow(2)}, Duplicates: 5, Superseded: 6,
		Charts: []Chart{{Row: fullRow(4), Series: *series}}}
	enc, err := encodeGather(g)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeGather(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, g) {
		t.Errorf("Gather round trip\n got %+v\nwant %+v", got, g)
	}
	if _, err := decodeGather(enc[:len(enc)-1]); err == nil {
		t.Error("a truncated Gather decoded")
	}
	empty, _ := encodeGather(Gather{})
	if got, err := decodeGather(empty); err != nil || !reflect.DeepEqual(got, Gather{}) {
		t.Errorf("empty Gather round trip: %+v, %v", got, err)
	}
}
