package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// The local warehouse's multi-table writes go through a journal:
//
//	<Dir>/_txn/<id>/f0000.parquet ...   the new files, fsynced
//	<Dir>/_txn/<id>/COMMIT              JSON list of {file, into}, written last
//
// Once COMMIT exists the files are renamed into their partitions and the
// transaction directory is removed. A crash before COMMIT leaves files no
// query reads (views read <table>/dt=*/ only); a crash after it is finished
// by Recover, which Open runs: renames that already happened are
// skipped, so finishing twice is harmless.
const (
	txnDir     = "_txn"
	commitFile = "COMMIT"
	// staleTxn is how old an uncommitted transaction must be before Recover
	// removes it: a live writer commits within seconds.
	staleTxn = 10 * time.Minute
)

type txnEntry struct {
	File string `json:"file"` // name inside the transaction directory
	Into string `json:"into"` // final path, relative to the warehouse
}

// WriteAll writes the rows of several tables as one transaction: after a
// crash either all of them are there (once Open or Recover ran) or none.
func (l *Warehouse) WriteAll(ctx context.Context, parts ...warehouse.TableRows) error {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	id := fmt.Sprintf("%d-%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	dir := filepath.Join(l.Dir, txnDir, id)
	wrap := func(err error) error { return fmt.Errorf("warehouse: transaction %s: %w", id, err) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return wrap(err)
	}
	// One file per table and day, written concurrently: most of the time
	// of a file is its fsync.
	type file struct {
		table string
		day   time.Time
		rows  warehouse.TableRows
	}
	var files []file
	for _, p := range parts {
		if p.Len() == 0 {
			continue
		}
		days, byDay := p.ByDate()
		for _, d := range days {
			files = append(files, file{p.Table().Name, d, byDay[d]})
		}
	}
	entries := make([]txnEntry, len(files))
	var g errgroup.Group
	g.SetLimit(4)
	for i, f := range files {
		g.Go(func() error {
			name, err := writeParquetFile(dir, f.rows)
			if err != nil {
				return fmt.Errorf("%s: %w", f.table, err)
			}
			into, _ := filepath.Rel(l.Dir, filepath.Join(partitionDir(l.Dir, f.table, f.day), name))
			entries[i] = txnEntry{File: name, Into: into}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		os.RemoveAll(dir)
		return wrap(err)
	}
	if len(entries) == 0 {
		return os.RemoveAll(dir)
	}
	if err := ctx.Err(); err != nil {
		os.RemoveAll(dir)
		return wrap(err)
	}
	manifest, err := json.Marshal(entries)
	if err != nil {
		return wrap(err)
	}
	if err := writeFileSync(dir, commitFile, manifest); err != nil {
		os.RemoveAll(dir)
		return wrap(err)
	}
	if err := l.finish(dir, entries); err != nil {
		return wrap(err)
	}
	return nil
}

// finish moves a committed transaction's files into place and removes it.
func (l *Warehouse) finish(dir string, entries []txnEntry) error {
	for _, e := range entries {
		dst := filepath.Join(l.Dir, e.Into)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		err := os.Rename(filepath.Join(dir, e.File), dst)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// recover finishes the committed transactions a crashed writer left in the
// local warehouse and removes uncommitted ones older than ten minutes, and
// finishes the committed compactions a crash interrupted (compact.go). It
// returns how many transactions it finished.
func (l *Warehouse) recover() (int, error) {
	root := filepath.Join(l.Dir, txnDir)
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("warehouse: recover: %w", err)
	}
	finished, compactions := 0, false
	for _, de := range ents {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		dir := filepath.Join(root, de.Name())
		raw, err := os.ReadFile(filepath.Join(dir, commitFile))
		if errors.Is(err, os.ErrNotExist) && fileExists(filepath.Join(dir, compactFile)) {
			compactions = true // finished below, under the lock
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			if info, err := de.Info(); err == nil && time.Since(info.ModTime()) > staleTxn {
				slog.Warn("warehouse: removing an uncommitted transaction", "dir", dir)
				os.RemoveAll(dir)
			}
			continue
		}
		if err != nil {
			return finished, fmt.Errorf("warehouse: recover %s: %w", dir, err)
		}
		var entries []txnEntry
		if err := json.Unmarshal(raw, &entries); err != nil {
			return finished, fmt.Errorf("warehouse: recover %s: %w", dir, err)
		}
		if err := l.finish(dir, entries); err != nil {
			return finished, fmt.Errorf("warehouse: recover %s: %w", dir, err)
		}
		finished++
	}
	if compactions {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		unlock, err := l.lock(ctx)
		if err != nil {
			return finished, fmt.Errorf("warehouse: recover: %w", err)
		}
		defer unlock()
		if err := l.finishCompactions(); err != nil {
			return finished, fmt.Errorf("warehouse: recover: %w", err)
		}
	}
	return finished, nil
}

// writeFileSync writes name in dir atomically and durably: a temporary
// file, fsynced, renamed, then the directory fsynced.
func writeFileSync(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
