// Package local is the local warehouse backend: under a directory, one
// directory per table and one Hive-style partition directory per day of
// Parquet files, written atomically (multi-table writes through a journal),
// queried with DuckDB in cgo builds. It registers itself for plain paths
// (warehouse.LocalScheme); link it with
//
//	import _ "github.com/inventory-events/inventory/loaders/warehouse/local"
//
// Writing needs no cgo; querying does (DuckDB), and fails with an error
// saying so in a CGO_ENABLED=0 build.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"cloud.google.com/go/civil"
	"github.com/parquet-go/parquet-go"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

func init() { warehouse.Register(warehouse.LocalScheme, backend{}) }

// backend is the warehouse.Backend of local directories.
type backend struct{}

func (backend) Open(_ context.Context, dir string) (warehouse.Writer, error) { return Open(dir) }

func (backend) Setup(_ context.Context, dir, _ string, dryRun bool) ([]string, error) {
	return setup(dir, dryRun)
}

func (backend) Query(ctx context.Context, dir, sql string) (*warehouse.Result, error) {
	return query(ctx, dir, sql)
}

func (backend) ReplaceDate(_ context.Context, dir string, date civil.Date, rows warehouse.TableRows) error {
	return replaceDate(dir, date, rows)
}

func (backend) Recover(dir string) (int, error) { return (&Warehouse{Dir: dir}).recover() }

// Warehouse is the local warehouse: under Dir, one directory per table and one
// Hive-style partition directory per day, each holding Parquet files:
//
//	<Dir>/<table>/dt=YYYY-MM-DD/part-<nanos>-<random>.parquet
//
// Every file is written under a hidden temporary name in its final directory
// and renamed into place, so a reader never sees a partial file.
type Warehouse struct {
	Dir string
}

var (
	_ warehouse.Writer        = (*Warehouse)(nil)
	_ warehouse.Transactional = (*Warehouse)(nil)
	_ warehouse.Recoverer     = backend{}
)

// Open returns the local warehouse in dir, creating the directory, and
// finishes what a crashed writer committed (Recover).
func Open(dir string) (*Warehouse, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("warehouse: open %s: %w", dir, err)
	}
	l := &Warehouse{Dir: dir}
	if _, err := l.recover(); err != nil {
		return nil, err
	}
	return l, nil
}

// Write appends rows to their table: one new file per partition date. It
// rejects no row.
func (l *Warehouse) Write(_ context.Context, rows warehouse.TableRows) ([]warehouse.DeadLetterRow, error) {
	if rows.Len() == 0 {
		return nil, nil
	}
	days, byDay := rows.ByDate()
	for _, d := range days {
		if err := writeParquet(partitionDir(l.Dir, rows.Table().Name, d), byDay[d]); err != nil {
			return nil, fmt.Errorf("warehouse: write %s: %w", rows.Table().Name, err)
		}
	}
	return nil, nil
}

// Close does nothing: every Write is durable when it returns.
func (l *Warehouse) Close() error { return nil }

func tableDir(dir, table string) string { return filepath.Join(dir, table) }

func partitionDir(dir, table string, day time.Time) string {
	return filepath.Join(dir, table, "dt="+day.Format(time.DateOnly))
}

// writeParquet writes rows into a new file in dir atomically: a temporary
// file, fsynced, then renamed.
func writeParquet(dir string, rows warehouse.TableRows) error {
	_, err := writeParquetFile(dir, rows)
	return err
}

// writeParquetFile is writeParquet returning the new file's name.
func writeParquetFile(dir string, rows warehouse.TableRows) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	t := rows.Table()
	write, ok := typedWriters[t.RowType]
	if !ok {
		return writeReflective(dir, rows)
	}
	return createPart(dir, func(out io.Writer) error { return write(out, schemaOf(t), rows) })
}

// typedWriters holds, for the row type of every table, writeTyped of that
// type. A row type without an entry is written by writeReflective, row by
// row (a test checks that every table has one).
var typedWriters = map[reflect.Type]func(io.Writer, *parquet.Schema, warehouse.TableRows) error{
	reflect.TypeFor[warehouse.AdjustmentRow]():      writeTyped[warehouse.AdjustmentRow],
	reflect.TypeFor[warehouse.StockLevelRow]():      writeTyped[warehouse.StockLevelRow],
	reflect.TypeFor[warehouse.AlertRow]():           writeTyped[warehouse.AlertRow],
	reflect.TypeFor[warehouse.DeadLetterRow]():      writeTyped[warehouse.DeadLetterRow],
	reflect.TypeFor[warehouse.DailySummaryRow]():    writeTyped[warehouse.DailySummaryRow],
	reflect.TypeFor[warehouse.ReportRunRow]():       writeTyped[warehouse.ReportRunRow],
	reflect.TypeFor[warehouse.ThresholdChangeRow](): writeTyped[warehouse.ThresholdChangeRow],
}

// typedChunk is the number of rows writeTyped hands the writer at a time.
const typedChunk = 1024

// writeTyped writes rows, of row type T, as a Parquet file of schema to out
// with parquet-go's generic writer, which copies the fields of T to the
// columns directly, a chunk of rows at a time. The file holds the same
// values as writeReflective's.
func writeTyped[T warehouse.Row](out io.Writer, schema *parquet.Schema, rows warehouse.TableRows) error {
	pw := parquet.NewGenericWriter[T](out, writerOptions(schema)...)
	for chunk := range warehouse.TypedChunks[T](rows, typedChunk) {
		if _, err := pw.Write(chunk); err != nil {
			return err
		}
	}
	return pw.Close()
}

// writeReflective writes rows into a new part file in dir with parquet-go's
// reflective writer, one row at a time, and returns the file's name.
func writeReflective(dir string, rows warehouse.TableRows) (string, error) {
	return writePart(dir, schemaOf(rows.Table()), func(pw *parquet.Writer) error {
		for i := range rows.Len() {
			if err := pw.Write(rows.Row(i)); err != nil {
				return err
			}
		}
		return nil
	})
}

// writePart writes a new part file in dir and returns its name (see
// createPart). fill writes the rows to a Snappy-compressed writer with opts
// besides (writerOptions).
func writePart(dir string, schema *parquet.Schema, fill func(*parquet.Writer) error, opts ...parquet.WriterOption) (string, error) {
	return createPart(dir, func(out io.Writer) error {
		pw := parquet.NewWriter(out, writerOptions(schema, opts...)...)
		if err := fill(pw); err != nil {
			return err
		}
		return pw.Close()
	})
}

// writerOptions returns the options of every Parquet writer of the
// warehouse: schema and Snappy compression, then opts.
func writerOptions(schema *parquet.Schema, opts ...parquet.WriterOption) []parquet.WriterOption {
	return append([]parquet.WriterOption{schema, parquet.Compression(&parquet.Snappy)}, opts...)
}

// createPart creates a new part file in dir, write writing the whole file
// to out, and returns its name: under a temporary name, fsynced, then
// renamed, so that no reader sees half a file; on an error the temporary
// file is removed.
func createPart(dir string, write func(out io.Writer) error) (string, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := fmt.Sprintf("part-%d-%s.parquet", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := write(f); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return "", err
	}
	ok = true
	return name, nil
}

func setup(dir string, dryRun bool) ([]string, error) {
	var lines []string
	for _, t := range warehouse.Tables {
		p := tableDir(dir, t.Name)
		if _, err := os.Stat(p); err == nil {
			lines = append(lines, fmt.Sprintf("table %s (%s): unchanged", t.Name, p))
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return lines, fmt.Errorf("warehouse: setup %s: %w", p, err)
		}
		if dryRun {
			lines = append(lines, fmt.Sprintf("table %s (%s): would create", t.Name, p))
			continue
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return lines, fmt.Errorf("warehouse: setup %s: %w", p, err)
		}
		lines = append(lines, fmt.Sprintf("table %s (%s): created", t.Name, p))
	}
	return lines, nil
}

// replaceDate writes the new partition next to the old one and swaps the
// directories with two renames. A query that lists the old files and reads
// them after the swap fails and is retried by query.
func replaceDate(dir string, date civil.Date, rows warehouse.TableRows) error {
	t := rows.Table()
	day := date.In(time.UTC)
	final := partitionDir(dir, t.Name, day)
	staging := filepath.Join(tableDir(dir, t.Name), ".staging-"+filepath.Base(final)+fmt.Sprint(time.Now().UnixNano()))
	trash := staging + ".old"
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: replace %s %s: %w", t.Name, date, err)
	}
	if rows.Len() > 0 {
		if err := writeParquet(staging, rows); err != nil {
			os.RemoveAll(staging)
			return wrap(err)
		}
	} else if err := os.MkdirAll(staging, 0o755); err != nil {
		return wrap(err)
	}
	// The swap holds the warehouse lock, so a compaction of the old
	// partition cannot place its merged file in the new one (compact.go).
	lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := (&Warehouse{Dir: dir}).lock(lctx)
	if err != nil {
		os.RemoveAll(staging)
		return wrap(err)
	}
	defer unlock()
	hadOld := true
	if err := os.Rename(final, trash); errors.Is(err, os.ErrNotExist) {
		hadOld = false
	} else if err != nil {
		os.RemoveAll(staging)
		return wrap(err)
	}
	if err := os.Rename(staging, final); err != nil {
		if hadOld {
			os.Rename(trash, final)
		}
		os.RemoveAll(staging)
		return wrap(err)
	}
	if hadOld {
		if err := os.RemoveAll(trash); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// schemaOf returns the Parquet schema of t's row type.
func schemaOf(t *warehouse.Table) *parquet.Schema {
	return parquet.SchemaOf(reflect.New(t.RowType).Interface())
}

// ErrReadOnly is the error of SQL that is not one query: the local
// warehouse runs SELECT statements only, reading its own Parquet files and
// nothing else, so no SQL can write a file, attach a database, load an
// extension or change a setting.
var ErrReadOnly = errors.New("the warehouse is read-only: SQL runs one query (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE) over its tables")
