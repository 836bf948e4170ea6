package event

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvColumns is the header of an adjustments CSV, in its usual order. Extra
// columns are ignored; columns may come in any order.
var csvColumns = []string{"event_id", "event_time", "sku", "location_id", "reason", "quantity", "source"}

// CSVReader reads adjustments from CSV, one row at a time, with the line
// number of each row for error messages. A bad row is an error for that row
// only: Next can be called again to read on.
//
// A line with no quote is split at its commas here; any other record (a
// quoted field, a line longer than the buffer, the last line without a
// newline) is read by encoding/csv, which shares the buffered input, so
// both read the same rows with the same errors (FuzzCSVReaderFastPath
// compares them). The fast path makes one string a line, where
// encoding/csv and the copies of its fields made five.
type CSVReader struct {
	br   *bufio.Reader
	r    *csv.Reader
	name string
	col  [7]int // index of each csvColumns entry in a record, -1 if absent
	cols int    // fields in the header; every row must have as many
	line int    // line of the row last returned
	// lines is how many lines have been read in all; csvLines how many
	// of them encoding/csv has counted (it numbers the lines it reads, and
	// the fast path reads some past it).
	lines, csvLines int
	rec             []string
	strs            map[string]string // SKUs, locations and sources seen (intern)
	noFast          bool              // tests: encoding/csv only
}

// maxInterned bounds the strings a CSVReader keeps to share: SKUs,
// locations and sources repeat from row to row, event ids do not.
const maxInterned = 1 << 16

// NewCSVReader reads the header of r and returns a reader of its rows. name
// is used in error messages (a file name, or "-").
func NewCSVReader(r io.Reader, name string) (*CSVReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	// A UTF-8 byte order mark, as spreadsheet exports write.
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br) // reads from br itself (bufio.NewReader returns it)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	c := &CSVReader{br: br, r: cr, name: name, strs: map[string]string{}}
	header, err := c.readCSV()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file, want a header %s", name, strings.Join(csvColumns, ","))
		}
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	c.cols = len(header)
	for i := range c.col {
		c.col[i] = -1
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		for j, want := range csvColumns {
			if h == want {
				c.col[j] = i
			}
		}
	}
	var missing []string
	for j, i := range c.col {
		if i < 0 && csvColumns[j] != "source" {
			missing = append(missing, csvColumns[j])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: header lacks %s (want %s)", name, strings.Join(missing, ", "), strings.Join(csvColumns, ","))
	}
	return c, nil
}

// read returns the next record's fields, valid until the next call, and
// sets c.line to its line.
func (c *CSVReader) read() ([]string, error) {
	for !c.noFast {
		n := c.br.Buffered()
		if n == 0 {
			if _, err := c.br.Peek(1); err != nil {
				break // encoding/csv returns the end or the error
			}
			n = c.br.Buffered()
		}
		buf, _ := c.br.Peek(n)
		i := bytes.IndexByte(buf, '\n')
		if i < 0 || bytes.IndexByte(buf[:i], '"') >= 0 {
			break
		}
		l := buf[:i]
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		c.lines++
		if len(l) == 0 { // encoding/csv skips empty lines
			_, _ = c.br.Discard(i + 1)
			continue
		}
		line := string(l)
		_, _ = c.br.Discard(i + 1)
		c.line = c.lines
		c.rec = c.rec[:0]
		for {
			j := strings.IndexByte(line, ',')
			if j < 0 {
				break
			}
			c.rec = append(c.rec, line[:j])
			line = line[j+1:]
		}
		c.rec = append(c.rec, line)
		return c.rec, nil
	}
	return c.readCSV()
}

// readCSV reads the next record with encoding/csv, numbering its lines
// from the lines read before it.
func (c *CSVReader) readCSV() ([]string, error) {
	off := c.lines - c.csvLines // lines the fast path read past encoding/csv
	rec, err := c.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// encoding/csv has read the whole line of the error.
			c.lines, c.csvLines = pe.Line+off, pe.Line
			moved := *pe
			moved.StartLine, moved.Line = pe.StartLine+off, pe.Line+off
			return nil, &moved
		}
		return nil, err
	}
	if len(rec) > 0 {
		first, _ := c.r.FieldPos(0)
		last, _ := c.r.FieldPos(len(rec) - 1)
		// The last field may hold line breaks (quoted); encoding/csv
		// turns each into one '\n'.
		c.csvLines = last + strings.Count(rec[len(rec)-1], "\n")
		c.lines = c.csvLines + off
		c.line = first + off
	}
	return rec, nil
}

// intern returns s, shared with the earlier rows that had it.
func (c *CSVReader) intern(s string) string {
	if v, ok := c.strs[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(c.strs) < maxInterned {
		c.strs[v] = v
	}
	return v
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
	rec, err := c.read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			c.line = pe.StartLine
			return &RowError{Name: c.name, Line: pe.StartLine, Err: invalid(codeBadCSV, "%v", pe.Err)}
		}
		return err
	}
	*a = Adjustment{}
	bad := func(code, format string, args ...any) error {
		return &RowError{Name: c.name, Line: c.line, Raw: strings.Join(rec, ","), Err: invalid(code, format, args...)}
	}
	if len(rec) != c.cols {
		return bad(codeBadCSV, "%d fields, the header has %d", len(rec), c.cols)
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
	a.SKU = c.intern(field(2))
	a.LocationID = c.intern(field(3))
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
			return bad(codeQuantityRange, "quantity %s does not fit in 64 bits", q)
		}
		return bad(CodeBadQuantity, "quantity %q is not a whole number", q)
	}
	a.Quantity = v
	a.Source = c.intern(field(6))
	return nil
}

// WriteCSVHeader writes the standard header to w.
func WriteCSVHeader(w *csv.Writer) error { return w.Write(csvColumns) }

// WriteCSV writes a as one row in the standard column order.
func WriteCSV(w *csv.Writer, a *Adjustment) error {
	return w.Write([]string{a.EventID, FormatTime(a.EventTime), a.SKU, a.LocationID, a.Reason.String(),
		strconv.FormatInt(a.Quantity, 10), a.Source})
}
