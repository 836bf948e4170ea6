package reports

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// WriteJSON writes r as summary.json, indented.
//
// Lists of rows are most of the file: every key of the day (30,000 in the
// benchmark) and, on a day without streaming stock, as many mismatches.
// encoding/json with indentation took half a second for them, the nightly
// job's publish step's long pole. So WriteJSON writes the report's object
// itself, each field through encoding/json except the lists of rows, which
// appendRowJSON writes several times faster, with the same bytes
// (TestWriteJSONAsEncodingJSON).
func WriteJSON(w io.Writer, r *Report) error {
	v := reflect.ValueOf(r).Elem()
	out := make([]byte, 0, 256<<10)
	out = append(out, '{')
	for i, f := range reportFields {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, "\n  "...)
		out = append(out, f.key...)
		out = append(out, ": "...)
		var err error
		if f.rows {
			out, err = appendRowsJSON(w, out, v.Field(f.index).Interface().([]Row))
		} else {
			var b []byte
			b, err = json.MarshalIndent(v.Field(f.index).Interface(), "  ", "  ")
			out = append(out, b...)
		}
		if err != nil {
			return fmt.Errorf("reports: write json: %s: %w", f.key, err)
		}
	}
	out = append(out, "\n}\n"...)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("reports: write json: %w", err)
	}
	return nil
}

// flushAt is how many bytes WriteJSON gathers before it writes them.
const flushAt = 192 << 10

// reportField is a field of Report: its index, its JSON key quoted, and
// whether it is a list of rows.
type reportField struct {
	index int
	key   string
	rows  bool
}

// reportFields are Report's fields in order.
var reportFields = func() []reportField {
	var fs []reportField
	t := reflect.TypeFor[Report]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("json")
		if !ok || name == "" || strings.ContainsAny(name, ",-") || !f.IsExported() {
			// WriteJSON writes each field under its tag's name; an option
			// (omitempty, ...) or a field without a name needs more.
			panic(fmt.Sprintf("reports: Report.%s: WriteJSON needs a plain json tag", f.Name))
		}
		key, _ := json.Marshal(name)
		fs = append(fs, reportField{i, string(key), f.Type == reflect.TypeFor[[]Row]()})
	}
	return fs
}()

// appendRowsJSON appends rows as a field of the report, writing out to w
// whenever it holds flushAt bytes.
func appendRowsJSON(w io.Writer, out []byte, rows []Row) ([]byte, error) {
	if rows == nil {
		return append(out, "null"...), nil
	}
	out = append(out, '[')
	for i := range rows {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, "\n    "...)
		var err error
		if out, err = appendRowJSON(out, &rows[i]); err != nil {
			return nil, err
		}
		if len(out) >= flushAt {
			if _, err := w.Write(out); err != nil {
				return nil, err
			}
			out = out[:0]
		}
	}
	if len(rows) > 0 {
		out = append(out, "\n  "...)
	}
	return append(out, ']'), nil
}

func writeJSONEncoder(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("reports: write json: %w", err)
	}
	return nil
}

// appendRowJSON appends x as an element of the report's rows: an object
// indented by two levels, as encoding/json's indenting encoder writes it.
func appendRowJSON(b []byte, x *Row) ([]byte, error) {
	ok := plainString(x.SKU) && plainString(x.LocationID) && finite(x.MinutesOutOfStock) &&
		(x.DaysOfCover == nil || finite(*x.DaysOfCover))
	if !ok {
		// Let encoding/json write it (or say why it cannot).
		one, err := json.MarshalIndent(x, "    ", "  ")
		if err != nil {
			return nil, fmt.Errorf("row %s@%s: %w", x.SKU, x.LocationID, err)
		}
		return append(b, one...), nil
	}
	b = append(b, "{\n      \"sku\": \""...)
	b = append(b, x.SKU...)
	b = append(b, "\",\n      \"location_id\": \""...)
	b = append(b, x.LocationID...)
	b = append(b, '"')
	b = appendIntField(b, "opening_on_hand", x.OpeningOnHand)
	b = appendIntField(b, "closing_on_hand", x.ClosingOnHand)
	b = appendIntField(b, "received", x.Received)
	b = appendIntField(b, "sold", x.Sold)
	b = appendIntField(b, "returned", x.Returned)
	b = appendIntField(b, "damaged", x.Damaged)
	b = appendIntField(b, "adjusted", x.Adjusted)
	b = appendIntField(b, "transfer_in", x.TransferIn)
	b = appendIntField(b, "transfer_out", x.TransferOut)
	b = appendIntField(b, "counted_delta", x.CountedDelta)
	b = appendIntField(b, "net_change", x.NetChange)
	b = appendIntField(b, "min_on_hand", x.MinOnHand)
	b = appendIntField(b, "events", x.Events)
	b = appendIntField(b, "alerts_raised", x.AlertsRaised)
	b = append(b, field+"minutes_out_of_stock\": "...)
	b = appendFloatJSON(b, x.MinutesOutOfStock)
	b = append(b, field+"days_of_cover\": "...)
	if x.DaysOfCover != nil {
		b = appendFloatJSON(b, *x.DaysOfCover)
	} else {
		b = append(b, "null"...)
	}
	b = appendIntField(b, "threshold", x.Threshold)
	b = append(b, field+"streaming_on_hand\": "...)
	if x.StreamingOnHand != nil {
		b = strconv.AppendInt(b, *x.StreamingOnHand, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, field+"reconciled\": "...)
	b = strconv.AppendBool(b, x.Reconciled)
	b = appendIntField(b, "sold_7d", x.Sold7d)
	b = appendIntField(b, "sold_28d", x.Sold28d)
	return append(b, "\n    }"...), nil
}

// field starts a row's field after the one before it.
const field = ",\n      \""

// appendIntField appends a row's field after the one before it.
func appendIntField(b []byte, name string, v int64) []byte {
	b = append(b, field...)
	b = append(b, name...)
	b = append(b, "\": "...)
	return strconv.AppendInt(b, v, 10)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// plainString reports whether encoding/json writes s as is between quotes:
// printable ASCII without the characters it escapes (quote, backslash, and
// <, >, & for HTML).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendFloatJSON appends a finite v as encoding/json writes a float64:
// the shortest decimal that reads back as v, in exponent form below 1e-6
// and from 1e21, with a one-digit exponent not padded.
func appendFloatJSON(b []byte, v float64) []byte {
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
