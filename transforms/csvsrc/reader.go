package csvsrc

import (
	"io"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
)

// Reader reads the rows of an adjustments CSV in file order, each decoded
// and validated: the one row reader of both jobs.
type Reader struct {
	// Now is the time rows are validated against (see event.Validate);
	// time.Now when nil.
	Now func() time.Time

	cr *event.CSVReader
}

// newReader returns a Reader of r, whose first line is the header; name
// (a path or URI) is used in errors.
func newReader(r io.Reader, name string) (*Reader, error) {
	cr, err := event.NewCSVReader(r, name)
	if err != nil {
		return nil, err
	}
	return &Reader{cr: cr}, nil
}

// Next reads the next row into a. It returns io.EOF at the end; for a bad
// row, after which reading may go on, a *event.RowError (it cannot be
// decoded) or a *event.Invalid (it fails event.Validate; a holds it as
// decoded); or another error if the input itself fails.
func (r *Reader) Next(a *event.Adjustment) error {
	if err := r.cr.Next(a); err != nil {
		return err
	}
	now := clock.Now
	if r.Now != nil {
		now = r.Now
	}
	return event.Validate(a, now())
}

// line returns the line number of the row last read by Next.
func (r *Reader) line() int { return r.cr.Line() }
