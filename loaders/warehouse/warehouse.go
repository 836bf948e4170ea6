// Package warehouse holds the analysts' tables and the two backends that
// store them: BigQuery ("bq://PROJECT.DATASET") and a local directory of
// date-partitioned Parquet files queried with DuckDB. Both take rows through
// one Writer interface, so the streaming and nightly jobs write to either.
package warehouse

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"google.golang.org/api/option"
)

// DefaultURI is the local warehouse used when no --warehouse is given.
const DefaultURI = "./warehouse"

// Writer appends rows to warehouse tables.
type Writer interface {
	// Write appends rows (a slice of one row struct type, e.g.
	// []AdjustmentRow, or []any holding them) to table. Rows the backend
	// rejects are written to dead_letters instead.
	Write(ctx context.Context, table string, rows any) error
	Close() error
}

// rejectingWriter is a Writer that also reports the rows it rejected (and
// already stored in dead_letters). The Beam sink emits them.
type rejectingWriter interface {
	Writer
	writeRejects(ctx context.Context, table string, rows any) ([]DeadLetterRow, error)
}

// bqPrefix starts a BigQuery warehouse URI.
const bqPrefix = "bq://"

// parseBQ splits "bq://PROJECT.DATASET". ok is false for a local directory.
func parseBQ(uri string) (project, dataset string, ok bool, err error) {
	rest, found := strings.CutPrefix(uri, bqPrefix)
	if !found {
		return "", "", false, nil
	}
	i := strings.LastIndex(rest, ".")
	if i <= 0 || i == len(rest)-1 {
		return "", "", true, fmt.Errorf("warehouse: %q: want bq://PROJECT.DATASET", uri)
	}
	return rest[:i], rest[i+1:], true, nil
}

// Open returns the backend named by uri: a local directory, or
// "bq://PROJECT.DATASET". BigQuery clients honour BIGQUERY_EMULATOR_HOST and
// BIGQUERY_STORAGE_EMULATOR_HOST (see README.md).
func Open(ctx context.Context, uri string) (Writer, error) {
	project, dataset, isBQ, err := parseBQ(uri)
	if err != nil {
		return nil, err
	}
	if isBQ {
		return OpenBigQuery(ctx, project, dataset, BigQueryOptions{})
	}
	return OpenLocal(uri)
}

// Setup creates the dataset and tables idempotently (local: directories;
// bq: dataset and tables, patching in new columns). It returns one
// human-readable line per object saying what it did, or "unchanged"; dryRun
// only plans. opts are extra client options for the BigQuery API.
func Setup(ctx context.Context, uri, bqLocation string, dryRun bool, opts ...option.ClientOption) ([]string, error) {
	project, dataset, isBQ, err := parseBQ(uri)
	if err != nil {
		return nil, err
	}
	if isBQ {
		return setupBigQuery(ctx, project, dataset, bqLocation, dryRun, opts...)
	}
	return setupLocal(uri, dryRun)
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
	out := make([]map[string]any, len(res.rows))
	for i, r := range res.rows {
		m := make(map[string]any, len(res.columns))
		for j, c := range res.columns {
			m[c] = r[j]
		}
		out[i] = m
	}
	return out, nil
}

// QueryTable runs sql like QueryRows and returns the column names and the
// rows as slices in column order, which is lighter for many rows.
func QueryTable(ctx context.Context, uri, sql string) ([]string, [][]any, error) {
	res, err := query(ctx, uri, sql)
	if err != nil {
		return nil, nil, err
	}
	return res.columns, res.rows, nil
}

func query(ctx context.Context, uri, sql string) (*result, error) {
	project, dataset, isBQ, err := parseBQ(uri)
	if err != nil {
		return nil, err
	}
	if isBQ {
		return queryBigQuery(ctx, project, dataset, sql, BigQueryOptions{})
	}
	return queryLocal(ctx, uri, sql)
}

// ReplaceDate replaces the rows of a date-partitioned table for one date
// with rows, so that a rerun of the nightly job for that date leaves one
// copy (daily_summary, report_runs). Every row must fall on date.
func ReplaceDate(ctx context.Context, uri, table string, date civil.Date, rows any) error {
	t, err := TableByName(table)
	if err != nil {
		return err
	}
	vals, err := t.rowValues(rows)
	if err != nil {
		return err
	}
	day := date.In(time.UTC)
	for _, v := range vals {
		if got := t.partitionDate(v); !got.Equal(day) {
			return fmt.Errorf("warehouse: replace %s %s: row of %s", table, date, got.Format(time.DateOnly))
		}
	}
	project, dataset, isBQ, err := parseBQ(uri)
	if err != nil {
		return err
	}
	if isBQ {
		return replaceDateBigQuery(ctx, project, dataset, t, date, vals, BigQueryOptions{})
	}
	return replaceDateLocal(uri, t, date, vals)
}
