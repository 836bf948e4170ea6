package event

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CSVColumns is the header of an adjustments CSV, in its usual order. Extra
// columns are ignored; columns may come in any order.
var CSVColumns = []string{"event_id", "event_time", "sku", "location_id", "reason", "quantity", "source"}

// CSVReader reads adjustments from CSV, one row at a time, with the line
// number of each row for error messages. A bad row is an error for that row
// only: Next can be called again to read on.
type CSVReader struct {
	r    *csv.Reader
	name string
	col  [7]int // index of each CSVColumns entry in a record, -1 if absent
	cols int    // fields in the header; every row must have as many
	line int
}

// NewCSVReader reads the header of r and returns a reader of its rows. name
// is used in error messages (a file name, or "-").
func NewCSVReader(r io.Reader, name string) (*CSVReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	// A UTF-8 byte order mark, as spreadsheet exports write.
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file, want a header %s", name, strings.Join(CSVColumns, ","))
		}
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	c := &CSVReader{r: cr, name: name, line: 1, cols: len(header)}
	for i := range c.col {
		c.col[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		for j, want := range CSVColumns {
			if h == want {
				c.col[j] = i
			}
		}
	}
	var missing []string
	for j, i := range c.col {
		if i < 0 && CSVColumns[j] != "source" {
			missing = append(missing, CSVColumns[j])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: header lacks %s (want %s)", name, strings.Join(missing, ", "), strings.Join(CSVColumns, ","))
	}
	return c, nil
}

// RowError is a bad CSV row.
type RowError struct {
	Name string
	Line int
	Raw  string // the row as read, re-joined with commas
	Err  *Invalid
}

func (e *RowError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Err.Error())
}

func (e *RowError) Unwrap() error { return e.Err }

// Line returns the line number of the row last returned by Next.
func (c *CSVReader) Line() int { return c.line }

// Next decodes the next row into a. It returns io.EOF at the end, a
// *RowError for a row that cannot be decoded (reading may go on), or
// another error if the input itself fails. It does not call Validate.
func (c *CSVReader) Next(a *Adjustment) error {
	rec, err := c.r.Read()
	if err == nil && len(rec) > 0 {
		c.line, _ = c.r.FieldPos(0)
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			c.line = pe.StartLine
			return &RowError{Name: c.name, Line: pe.StartLine, Err: invalid(CodeBadCSV, "%v", pe.Err)}
		}
		return err
	}
	*a = Adjustment{}
	bad := func(code, format string, args ...any) error {
		return &RowError{Name: c.name, Line: c.line, Raw: strings.Join(rec, ","), Err: invalid(code, format, args...)}
	}
	if len(rec) != c.cols {
		return bad(CodeBadCSV, "%d fields, the header has %d", len(rec), c.cols)
	}
	field := func(j int) string {
		if c.col[j] < 0 {
			return ""
		}
		return strings.TrimSpace(rec[c.col[j]])
	}
	a.EventID = strings.Clone(field(0))
	if t := field(1); t != "" {
		if err := setTime(a, t); err != nil {
			var inv *Invalid
			errors.As(err, &inv)
			return &RowError{Name: c.name, Line: c.line, Raw: strings.Join(rec, ","), Err: inv}
		}
	}
	a.SKU = strings.Clone(field(2))
	a.LocationID = strings.Clone(field(3))
	if r := field(4); r != "" {
		reason, ok := ParseReason(r)
		if !ok {
			return bad(CodeUnknownReason, "reason %q is not one of the contract's", r)
		}
		a.Reason = reason
	}
	q := field(5)
	if q == "" {
		return bad(CodeBadQuantity, "quantity is empty")
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return bad(CodeQuantityRange, "quantity %s does not fit in 64 bits", q)
		}
		return bad(CodeBadQuantity, "quantity %q is not a whole number", q)
	}
	a.Quantity = v
	a.Source = strings.Clone(field(6))
	return nil
}

// WriteCSVHeader writes the standard header to w.
func WriteCSVHeader(w *csv.Writer) error { return w.Write(CSVColumns) }

// WriteCSV writes a as one row in the standard column order.
func WriteCSV(w *csv.Writer, a *Adjustment) error {
	return w.Write([]string{a.EventID, FormatTime(a.EventTime), a.SKU, a.LocationID, a.Reason.String(),
		strconv.FormatInt(a.Quantity, 10), a.Source})
}
