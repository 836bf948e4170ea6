package warehouse

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
	"sort"
	"time"

	"cloud.google.com/go/civil"
	"github.com/parquet-go/parquet-go"
)

// Local is the local warehouse: under Dir, one directory per table and one
// Hive-style partition directory per day, each holding Parquet files:
//
//	<Dir>/<table>/dt=YYYY-MM-DD/part-<nanos>-<random>.parquet
//
// Every file is written under a hidden temporary name in its final directory
// and renamed into place, so a reader never sees a partial file.
type Local struct {
	Dir string
}

var _ Writer = (*Local)(nil)

// OpenLocal returns the local warehouse in dir, creating the directory, and
// finishes what a crashed writer committed (Recover).
func OpenLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("warehouse: open %s: %w", dir, err)
	}
	l := &Local{Dir: dir}
	if _, err := l.Recover(); err != nil {
		return nil, err
	}
	return l, nil
}

// Write appends rows to table: one new file per partition date.
func (l *Local) Write(ctx context.Context, table string, rows any) error {
	t, err := TableByName(table)
	if err != nil {
		return err
	}
	vals, err := t.rowValues(rows)
	if err != nil {
		return err
	}
	if err := l.write(t, vals); err != nil {
		return fmt.Errorf("warehouse: write %s: %w", table, err)
	}
	return nil
}

func (l *Local) write(t *Table, vals []reflect.Value) error {
	days, byDay := partitions(t, vals)
	for _, d := range days {
		if err := writeParquet(partitionDir(l.Dir, t.Name, d), t, byDay[d]); err != nil {
			return err
		}
	}
	return nil
}

// partitions groups rows by their partition date, dates in order.
func partitions(t *Table, vals []reflect.Value) ([]time.Time, map[time.Time][]reflect.Value) {
	byDay := map[time.Time][]reflect.Value{}
	for _, v := range vals {
		d := t.partitionDate(v)
		byDay[d] = append(byDay[d], v)
	}
	days := make([]time.Time, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days, byDay
}

// Close does nothing: every Write is durable when it returns.
func (l *Local) Close() error { return nil }

func (l *Local) writeRejects(ctx context.Context, table string, rows any) ([]DeadLetterRow, error) {
	return nil, l.Write(ctx, table, rows)
}

func tableDir(dir, table string) string { return filepath.Join(dir, table) }

func partitionDir(dir, table string, day time.Time) string {
	return filepath.Join(dir, table, "dt="+day.Format(time.DateOnly))
}

// writeParquet writes rows into a new file in dir atomically: a temporary
// file, fsynced, then renamed.
func writeParquet(dir string, t *Table, rows []reflect.Value) error {
	_, err := writeParquetFile(dir, t, rows)
	return err
}

// writeParquetFile is writeParquet returning the new file's name.
func writeParquetFile(dir string, t *Table, rows []reflect.Value) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
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
	pw := parquet.NewWriter(f, parquet.SchemaOf(reflect.New(t.RowType).Interface()), parquet.Compression(&parquet.Snappy))
	for _, r := range rows {
		if err := pw.Write(r.Interface()); err != nil {
			return "", err
		}
	}
	if err := pw.Close(); err != nil {
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

func setupLocal(dir string, dryRun bool) ([]string, error) {
	var lines []string
	for _, t := range Tables {
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

// replaceDateLocal writes the new partition next to the old one and swaps
// the directories with two renames. A query that lists the old files and
// reads them after the swap fails and is retried by queryLocal.
func replaceDateLocal(dir string, t *Table, date civil.Date, vals []reflect.Value) error {
	day := date.In(time.UTC)
	final := partitionDir(dir, t.Name, day)
	staging := filepath.Join(tableDir(dir, t.Name), ".staging-"+filepath.Base(final)+fmt.Sprint(time.Now().UnixNano()))
	trash := staging + ".old"
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: replace %s %s: %w", t.Name, date, err)
	}
	if len(vals) > 0 {
		if err := writeParquet(staging, t, vals); err != nil {
			os.RemoveAll(staging)
			return wrap(err)
		}
	} else if err := os.MkdirAll(staging, 0o755); err != nil {
		return wrap(err)
	}
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

// Compact merges the files of one partition of table into one file, so
// queries over a long-running stream's many small files stay fast. Files
// written while it runs are kept as they are. A query that listed a removed
// file is retried by Query. It returns the number of files merged.
func (l *Local) Compact(ctx context.Context, table string, date civil.Date) (int, error) {
	t, err := TableByName(table)
	if err != nil {
		return 0, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: compact %s %s: %w", table, date, err)
	}
	dir := partitionDir(l.Dir, t.Name, date.In(time.UTC))
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil || len(files) < 2 {
		return 0, err
	}
	var rows []reflect.Value
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return 0, wrap(err)
		}
		read, err := readParquet(name, t)
		if err != nil {
			return 0, wrap(err)
		}
		rows = append(rows, read...)
	}
	if err := writeParquet(dir, t, rows); err != nil {
		return 0, wrap(err)
	}
	for _, name := range files {
		if err := os.Remove(name); err != nil {
			return 0, wrap(err)
		}
	}
	return len(files), nil
}

func readParquet(name string, t *Table) ([]reflect.Value, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := parquet.NewReader(f, parquet.SchemaOf(reflect.New(t.RowType).Interface()))
	defer r.Close()
	var rows []reflect.Value
	for {
		p := reflect.New(t.RowType)
		if err := r.Read(p.Interface()); err != nil {
			if errors.Is(err, io.EOF) {
				return rows, nil
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		rows = append(rows, p.Elem())
	}
}
