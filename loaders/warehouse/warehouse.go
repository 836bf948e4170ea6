// Package warehouse holds the analysts' tables: their definitions, the row
// types, the Writer interface and the Beam sink. The backends that store
// them live in sub-packages and register themselves by URI scheme, like
// Beam's filesystems; a binary links the ones it imports:
//
//	import _ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq://PROJECT.DATASET
//	import _ "github.com/inventory-events/inventory/loaders/warehouse/local"    // a directory
//
// Everything here is pure Go, so a binary that imports only the BigQuery
// backend builds with CGO_ENABLED=0 (as Dataflow workers are built).
package warehouse

import (
	"context"
	"fmt"
	"github.com/inventory-events/inventory/internal/names"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/civil"
)

// DefaultURI is the local warehouse used when no --warehouse is given.
const DefaultURI = names.Warehouse

// Writer appends rows to warehouse tables.
type Writer interface {
	// Write appends rows to their table. Rows the backend rejects are
	// stored in dead_letters instead and returned (do not write them
	// again); the error is about the write as a whole.
	Write(ctx context.Context, rows TableRows) ([]DeadLetterRow, error)
	Close() error
}

// Backend stores the tables at the URIs of one scheme.
type Backend interface {
	// Open returns a Writer of the warehouse at uri.
	Open(ctx context.Context, uri string) (Writer, error)
	// Setup creates the tables idempotently; see the package function.
	Setup(ctx context.Context, uri, location string, dryRun bool) ([]string, error)
	// Query runs sql in the backend's dialect.
	Query(ctx context.Context, uri, sql string) (*Result, error)
	// ReplaceDate replaces one date of a date-partitioned table with rows,
	// all of which fall on date.
	ReplaceDate(ctx context.Context, uri string, date civil.Date, rows TableRows) error
}

// Recoverer is a Backend whose writes a crash can leave half done.
type Recoverer interface {
	// Recover finishes or removes what a crashed writer left at uri and
	// returns how many writes it finished.
	Recover(uri string) (int, error)
}

// LocalScheme is the scheme of a URI without "scheme://": a local path.
const LocalScheme = ""

var backends = struct {
	sync.RWMutex
	m map[string]Backend
}{m: map[string]Backend{}}

// Register makes b the backend of URIs "scheme://..." (LocalScheme: plain
// paths). It is meant to be called from the backend package's init and
// panics if the scheme is taken.
func Register(scheme string, b Backend) {
	backends.Lock()
	defer backends.Unlock()
	if _, dup := backends.m[scheme]; dup {
		panic(fmt.Sprintf("warehouse: backend for scheme %q registered twice", scheme))
	}
	backends.m[scheme] = b
}

// Scheme returns the scheme of uri: "bq" for "bq://p.d", LocalScheme for a
// path.
func Scheme(uri string) string {
	if s, _, ok := strings.Cut(uri, "://"); ok {
		return s
	}
	return LocalScheme
}

func backendFor(uri string) (Backend, error) {
	if uri == "" {
		return nil, fmt.Errorf("warehouse: empty URI (want a directory or bq://PROJECT.DATASET)")
	}
	s := Scheme(uri)
	backends.RLock()
	b, ok := backends.m[s]
	var have []string
	for k := range backends.m {
		have = append(have, fmt.Sprintf("%q", k))
	}
	backends.RUnlock()
	if ok {
		return b, nil
	}
	sort.Strings(have)
	return nil, fmt.Errorf("warehouse: no backend for %q (scheme %q; registered: %s): the binary must import it, "+
		`e.g. _ "github.com/inventory-events/inventory/loaders/warehouse/local" or .../warehouse/bigquery`,
		uri, s, strings.Join(have, ", "))
}

// Open returns a Writer of the warehouse at uri: a local directory, or
// "bq://PROJECT.DATASET".
func Open(ctx context.Context, uri string) (Writer, error) {
	b, err := backendFor(uri)
	if err != nil {
		return nil, err
	}
	return b.Open(ctx, uri)
}

// Setup creates the dataset and tables idempotently (local: directories;
// bq: dataset in location and tables, patching in new columns). It returns
// one human-readable line per object saying what it did, or "unchanged";
// dryRun only plans.
func Setup(ctx context.Context, uri, location string, dryRun bool) ([]string, error) {
	b, err := backendFor(uri)
	if err != nil {
		return nil, err
	}
	return b.Setup(ctx, uri, location, dryRun)
}

// Query runs sql and writes the result to w as "table" (aligned text),
// "csv" or "json" (an array of objects). Locally the SQL is DuckDB's, with
// one view per table named like the table; for bq:// it is GoogleSQL.
func Query(ctx context.Context, uri, sql, format string, w io.Writer) error {
	switch format {
	case "", "table", "csv", "json":
	default:
		return fmt.Errorf("warehouse: query: unknown format %q (want table, csv or json)", format)
	}
	res, err := query(ctx, uri, sql)
	if err != nil {
		return err
	}
	return res.write(w, format)
}

// QueryRows runs sql like Query and returns the rows as maps from column name
// to value: nil, bool, int64, float64, string, []byte, time.Time (TIMESTAMP)
// or civil.Date (DATE).
func QueryRows(ctx context.Context, uri, sql string) ([]map[string]any, error) {
	res, err := query(ctx, uri, sql)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(res.Rows))
	for i, r := range res.Rows {
		m := make(map[string]any, len(res.Columns))
		for j, c := range res.Columns {
			m[c] = r[j]
		}
		out[i] = m
	}
	return out, nil
}

// QueryInt runs sql like Query and returns its one value, a number (a count,
// a sum) as an int64; it fails unless the result is one row of one column.
func QueryInt(ctx context.Context, uri, sql string) (int64, error) {
	res, err := query(ctx, uri, sql)
	if err != nil {
		return 0, err
	}
	if len(res.Rows) != 1 || len(res.Columns) != 1 {
		return 0, fmt.Errorf("warehouse: query %q: %d rows of %d columns, want one value", sql, len(res.Rows), len(res.Columns))
	}
	switch v := res.Rows[0][0].(type) {
	case int64:
		return v, nil
	case float64:
		return int64(v), nil
	default:
		return 0, fmt.Errorf("warehouse: query %q: a %T, want a number", sql, v)
	}
}

// QueryTable runs sql like QueryRows and returns the column names and the
// rows as slices in column order, which is lighter for many rows.
func QueryTable(ctx context.Context, uri, sql string) ([]string, [][]any, error) {
	res, err := query(ctx, uri, sql)
	if err != nil {
		return nil, nil, err
	}
	return res.Columns, res.Rows, nil
}

func query(ctx context.Context, uri, sql string) (*Result, error) {
	b, err := backendFor(uri)
	if err != nil {
		return nil, err
	}
	return b.Query(ctx, uri, sql)
}

// ReplaceDate replaces the rows of a date-partitioned table for one date
// with rows, so that a rerun of the nightly job for that date leaves one
// copy (daily_summary, report_runs). Every row must fall on date.
func ReplaceDate[T Row](ctx context.Context, uri string, date civil.Date, rows []T) error {
	tr := Rows(rows)
	day := date.In(time.UTC)
	for i := range tr.Len() {
		if got := tr.partitionDate(i); !got.Equal(day) {
			return fmt.Errorf("warehouse: replace %s %s: row of %s", tr.table.Name, date, got.Format(time.DateOnly))
		}
	}
	b, err := backendFor(uri)
	if err != nil {
		return err
	}
	return b.ReplaceDate(ctx, uri, date, tr)
}

// Recover finishes what a crashed writer left in the warehouse at uri, if
// its backend needs that (the local one; BigQuery's writes need no
// recovery), and returns how many writes it finished.
func Recover(uri string) (int, error) {
	b, err := backendFor(uri)
	if err != nil {
		return 0, err
	}
	if r, ok := b.(Recoverer); ok {
		return r.Recover(uri)
	}
	return 0, nil
}

// Transactional is a Writer that stores the rows of several tables as one
// unit: after a crash either all of them are there or none.
type Transactional interface {
	WriteAll(ctx context.Context, parts ...TableRows) error
}

// WriteAll writes the rows of several tables. A Transactional writer (the
// local warehouse) writes them atomically. Others (BigQuery) write them in
// the order given, each part committed before the next is sent, so the
// caller puts last the part that marks the others done (the streaming job
// writes adjustments last). It returns the rows the backend rejected,
// already stored in dead_letters.
func WriteAll(ctx context.Context, w Writer, parts ...TableRows) ([]DeadLetterRow, error) {
	if tw, ok := w.(Transactional); ok {
		return nil, tw.WriteAll(ctx, parts...)
	}
	var rejected []DeadLetterRow
	for _, p := range parts {
		if p.Len() == 0 {
			continue
		}
		r, err := w.Write(ctx, p)
		rejected = append(rejected, r...)
		if err != nil {
			return rejected, err
		}
	}
	return rejected, nil
}
