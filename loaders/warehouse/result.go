package warehouse

import (
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is a query result. Backends normalise values to nil, bool, int64,
// float64, string, []byte, time.Time (TIMESTAMP, UTC) or civil.Date (DATE).
type Result struct {
	Columns []string
	Rows    [][]any
}

// text renders one value for the table and CSV formats.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	}
	return fmt.Sprint(v)
}

func (r *Result) write(w io.Writer, format string) error {
	var err error
	switch format {
	case "csv":
		err = r.writeCSV(w)
	case "json":
		err = r.writeJSON(w)
	default:
		err = r.writeTable(w)
	}
	if err != nil {
		return fmt.Errorf("warehouse: write %s result: %w", format, err)
	}
	return nil
}

func (r *Result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	rec := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, v := range row {
			rec[i] = text(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (r *Result) writeJSON(w io.Writer) error {
	var b strings.Builder
	b.WriteString("[")
	for i, row := range r.Rows {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(r.Columns[j])
			if t, ok := v.(time.Time); ok {
				v = text(t)
			}
			val, err := json.Marshal(v)
			if err != nil {
				return err
			}
			b.Write(k)
			b.WriteString(": ")
			b.Write(val)
		}
		b.WriteString("}")
	}
	if len(r.Rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Result) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.Columns, "\t"))
	dashes := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		dashes[i] = strings.Repeat("-", max(len(c), 3))
	}
	fmt.Fprintln(tw, strings.Join(dashes, "\t"))
	cells := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i, v := range row {
			if v == nil {
				cells[i] = "NULL"
			} else {
				cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(text(v))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	fmt.Fprintf(tw, "(%d rows)\n", len(r.Rows))
	return tw.Flush()
}
