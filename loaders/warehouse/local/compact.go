package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/parquet-go/parquet-go"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// Compaction merges the small files of a partition into one, through the
// journal (txn.go):
//
//	<Dir>/_txn/<id>/part-....parquet   the merged file, fsynced
//	<Dir>/_txn/<id>/COMPACT            JSON {file, into, remove}, written last
//
// Once COMPACT exists, the merged file is renamed into its partition and
// then the files it replaces are removed; Recover finishes a compaction a
// crash interrupted. A crash before COMPACT leaves the old files only (the
// merged one sits in the journal, which no query reads). Queries read a
// partition as its files minus those a committed compaction replaces, plus
// that compaction's merged file wherever it is (liveFiles), so even a query
// that lists a partition half-way through a compaction's renames sees each
// row once. The manifest is not named COMMIT so that an older binary, which
// would place the merged file without removing the old ones, treats it as
// an unfinished transaction instead.
//
// The merged file is placed only if every file it replaces is still there,
// checked under the warehouse lock (lock_unix.go), which replaceDate holds
// while it swaps a partition: two compactions that merged the same files,
// or one that raced a partition replacement, cannot both land.
const compactFile = "COMPACT"

type compactEntry struct {
	File   string   `json:"file"`   // the merged file, inside the transaction directory
	Into   string   `json:"into"`   // its final path, relative to the warehouse
	Remove []string `json:"remove"` // the files it replaces, relative to the warehouse
}

// CompactPolicy says which files of a partition Compact merges. Files are
// grouped in size tiers, each Fanout times the size of the one below:
// tier 0 below Base, tier 1 below Base*Fanout, and so on. A tier holding at
// least Fanout files is merged into one file, which lands a tier or more
// higher. So a partition keeps fewer than Fanout files per tier (tens in
// all), a row is rewritten about once per tier it climbs, and files of at
// least Big bytes are never read again.
type CompactPolicy struct {
	Fanout   int   // files of a tier merged together; default 8
	Base     int64 // upper size of tier 0; default 256 KiB
	Big      int64 // files at least this size are left alone; default 64 MiB
	MaxFiles int   // most files merged into one at a time; default 1000
}

func (p CompactPolicy) withDefaults() CompactPolicy {
	if p.Fanout < 2 {
		p.Fanout = 8
	}
	if p.Base <= 0 {
		p.Base = 256 << 10
	}
	if p.Big <= 0 {
		p.Big = 64 << 20
	}
	if p.MaxFiles < 2 {
		p.MaxFiles = 1000
	}
	return p
}

func (p CompactPolicy) tier(size int64) int {
	k := 0
	for lim := p.Base; size >= lim; lim *= int64(p.Fanout) {
		k++
	}
	return k
}

type partFile struct {
	path string
	size int64
}

// pick returns the files of the lowest tier that holds at least Fanout
// files below Big, oldest first, at most MaxFiles of them; nil when no
// tier is full.
func (p CompactPolicy) pick(files []partFile) []partFile {
	tiers := map[int][]partFile{}
	for _, f := range files {
		if f.size < p.Big {
			k := p.tier(f.size)
			tiers[k] = append(tiers[k], f)
		}
	}
	for _, k := range slices.Sorted(func(yield func(int) bool) {
		for k := range tiers {
			if !yield(k) {
				return
			}
		}
	}) {
		if group := tiers[k]; len(group) >= p.Fanout {
			return group[:min(len(group), p.MaxFiles)]
		}
	}
	return nil
}

// CompactStats counts what a compaction did.
type CompactStats struct {
	Partitions int // partitions looked at
	Merged     int // files merged (and removed)
	Written    int // merged files written
}

// compactHook, when set (tests), is called at each step of placing a
// compaction; an error stops it there, as a crash would.
var compactHook func(step string) error

// queryHook, when set (tests), is called once a query has listed a
// table's files, before DuckDB opens them (query_cgo.go).
var queryHook func(table string)

func hook(step string) error {
	if compactHook == nil {
		return nil
	}
	return compactHook(step)
}

// Compact merges the small files of one partition of table, as policy says
// (the zero policy: the defaults), until no tier of it is full. Files
// written while it runs are left as they are. It returns the number of
// files merged.
func (l *Warehouse) Compact(ctx context.Context, table string, date civil.Date, policy CompactPolicy) (int, error) {
	st, err := l.compactPartition(ctx, table, partitionDir(l.Dir, table, date.In(time.UTC)), policy.withDefaults())
	return st.Merged, err
}

// CompactAll compacts every partition of every table whose directory
// changed at or after since (the zero time: all of them).
func (l *Warehouse) CompactAll(ctx context.Context, since time.Time, policy CompactPolicy) (CompactStats, error) {
	policy = policy.withDefaults()
	var total CompactStats
	for _, t := range warehouse.Tables {
		ents, err := os.ReadDir(tableDir(l.Dir, t.Name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return total, fmt.Errorf("warehouse: compact %s: %w", t.Name, err)
		}
		for _, de := range ents {
			if !de.IsDir() || !strings.HasPrefix(de.Name(), "dt=") {
				continue
			}
			if info, err := de.Info(); err != nil || info.ModTime().Before(since) {
				continue
			}
			st, err := l.compactPartition(ctx, t.Name, filepath.Join(tableDir(l.Dir, t.Name), de.Name()), policy)
			total.Partitions++
			total.Merged += st.Merged
			total.Written += st.Written
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

func (l *Warehouse) compactPartition(ctx context.Context, table, dir string, p CompactPolicy) (CompactStats, error) {
	st := CompactStats{Partitions: 1}
	t, err := warehouse.TableByName(table)
	if err != nil {
		return st, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: compact %s %s: %w", table, filepath.Base(dir), err)
	}
	// Each merge moves its files at least one tier up, so this ends; the
	// bound only guards against a policy that does not.
	for range 64 {
		if err := ctx.Err(); err != nil {
			return st, wrap(err)
		}
		files, err := listParts(dir)
		if err != nil {
			return st, wrap(err)
		}
		group := p.pick(files)
		if group == nil {
			return st, nil
		}
		placed, err := l.merge(ctx, t, dir, group)
		if err != nil {
			return st, wrap(err)
		}
		if !placed {
			// Another compaction or a partition replacement got there
			// first: look again.
			continue
		}
		st.Merged += len(group)
		st.Written++
	}
	return st, nil
}

// listParts returns the Parquet files of a partition directory, oldest
// (by name: part-<nanos>-...) first.
func listParts(dir string) ([]partFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []partFile
	for _, de := range ents {
		if de.IsDir() || strings.HasPrefix(de.Name(), ".") || !strings.HasSuffix(de.Name(), ".parquet") {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed since the listing
		}
		out = append(out, partFile{filepath.Join(dir, de.Name()), info.Size()})
	}
	return out, nil
}

// merge writes the rows of files into one file in a new journal directory,
// commits it and places it. It reports whether it was placed.
func (l *Warehouse) merge(ctx context.Context, t *warehouse.Table, dir string, files []partFile) (bool, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return false, err
	}
	txn := filepath.Join(l.Dir, txnDir, fmt.Sprintf("%d-%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:])))
	if err := os.MkdirAll(txn, 0o755); err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(txn)
		}
	}()
	name, err := mergeFiles(ctx, txn, t, files)
	if err != nil {
		return false, err
	}
	into, _ := filepath.Rel(l.Dir, filepath.Join(dir, name))
	e := compactEntry{File: name, Into: into}
	for _, f := range files {
		rel, _ := filepath.Rel(l.Dir, f.path)
		e.Remove = append(e.Remove, rel)
	}
	if err := hook("merged"); err != nil {
		ok = true // a crash leaves the journal directory behind
		return false, err
	}
	manifest, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	// Committed and placed under the lock, after finishing what a crashed
	// compactor committed: at most one compaction is ever committed and not
	// finished, and it replaces files that were all there.
	unlock, err := l.lock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	if err := l.finishCompactions(); err != nil {
		return false, err
	}
	for _, r := range e.Remove {
		if !fileExists(filepath.Join(l.Dir, r)) {
			return false, nil // merged elsewhere meanwhile, or replaced
		}
	}
	if err := writeFileSync(txn, compactFile, manifest); err != nil {
		return false, err
	}
	ok = true
	return l.finishCompact(txn, e)
}

// finishCompactions finishes every committed compaction in the journal.
// The caller holds the lock.
func (l *Warehouse) finishCompactions() error {
	ents, err := os.ReadDir(filepath.Join(l.Dir, txnDir))
	if err != nil {
		return nil
	}
	for _, de := range ents {
		txn := filepath.Join(l.Dir, txnDir, de.Name())
		raw, err := os.ReadFile(filepath.Join(txn, compactFile))
		if err != nil {
			continue
		}
		var e compactEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("recover %s: %w", txn, err)
		}
		if _, err := l.finishCompact(txn, e); err != nil {
			return fmt.Errorf("recover %s: %w", txn, err)
		}
	}
	return nil
}

// mergeRowGroup is the row group size of a merged file.
const mergeRowGroup = 64 << 10

// mergeFiles writes the rows of files, in order, into a new file in dir
// (written under a temporary name, fsynced, renamed), one row at a time and
// one row group at a time, so memory does not grow with the files. It returns the new file's name.
func mergeFiles(ctx context.Context, dir string, t *warehouse.Table, files []partFile) (string, error) {
	schema := schemaOf(t)
	row := reflect.New(t.RowType)
	// Row groups of mergeRowGroup rows: the writer holds a row group's
	// pages in memory until it is flushed.
	return writePart(dir, schema, func(pw *parquet.Writer) error {
		for _, in := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := copyRows(pw, in.path, schema, row); err != nil {
				return err
			}
		}
		return nil
	}, parquet.MaxRowsPerRowGroup(mergeRowGroup))
}

// copyRows writes the rows of the file name to pw, decoded through row (a
// pointer to the table's row struct): a file written before a column was
// added reads as the column's zero value there.
func copyRows(pw *parquet.Writer, name string, schema *parquet.Schema, row reflect.Value) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r := parquet.NewReader(f, schema)
	defer r.Close()
	for {
		row.Elem().SetZero()
		if err := r.Read(row.Interface()); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s: %w", name, err)
		}
		if err := pw.Write(row.Interface()); err != nil {
			return fmt.Errorf("write rows of %s: %w", name, err)
		}
	}
}

// finishCompact places a committed compaction's merged file and removes the
// files it replaces, then its journal directory. The caller holds the lock.
// If the merged file is not placed yet and one of the files it replaces is
// gone, the partition changed since (another compaction merged them, or
// the partition was replaced): the merged file is dropped. It reports
// whether the merged file is in place.
func (l *Warehouse) finishCompact(txn string, e compactEntry) (bool, error) {
	src, dst := filepath.Join(txn, e.File), filepath.Join(l.Dir, e.Into)
	if _, err := os.Stat(src); err == nil {
		for _, r := range e.Remove {
			if _, err := os.Stat(filepath.Join(l.Dir, r)); errors.Is(err, os.ErrNotExist) {
				slog.Debug("warehouse: dropping a compaction whose files are gone", "file", r)
				return false, os.RemoveAll(txn)
			}
		}
		if err := hook("committed"); err != nil {
			return false, err
		}
		if err := os.Rename(src, dst); err != nil {
			return false, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	for i, r := range e.Remove {
		if i == len(e.Remove)/2 {
			if err := hook("placed"); err != nil {
				return true, err
			}
		}
		if err := os.Remove(filepath.Join(l.Dir, r)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return true, err
		}
	}
	if err := syncDir(filepath.Dir(dst)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, err
	}
	return true, os.RemoveAll(txn)
}

// liveFiles returns the Parquet files of table as a query must read them:
// the files of its partitions, less those a committed compaction replaces,
// plus that compaction's merged file, in the journal or in place. The
// partitions are listed before the journal: a compaction that finishes in
// between leaves listed files that are gone, which the query reports as a
// vanished file and query retries.
func liveFiles(dir, table string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(tableDir(dir, table), "dt=*", "*.parquet"))
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(dir, txnDir))
	if errors.Is(err, os.ErrNotExist) || len(ents) == 0 {
		return files, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := table + string(filepath.Separator)
	drop := map[string]bool{}
	var add []string
	for _, de := range ents {
		txn := filepath.Join(dir, txnDir, de.Name())
		raw, err := os.ReadFile(filepath.Join(txn, compactFile))
		if err != nil {
			continue // not a compaction, not committed, or finished since
		}
		var e compactEntry
		if json.Unmarshal(raw, &e) != nil || !strings.HasPrefix(e.Into, prefix) {
			continue
		}
		dst := filepath.Join(dir, e.Into)
		if src := filepath.Join(txn, e.File); fileExists(src) {
			// Not placed yet: it counts only if it will be, which needs
			// every file it replaces.
			gone := slices.ContainsFunc(e.Remove, func(r string) bool { return !fileExists(filepath.Join(dir, r)) })
			if gone {
				continue
			}
			add = append(add, src)
		} else {
			add = append(add, dst)
		}
		for _, r := range e.Remove {
			drop[filepath.Join(dir, r)] = true
		}
		drop[dst] = true // listed once, from add
	}
	out := files[:0:0]
	for _, f := range files {
		if !drop[f] {
			out = append(out, f)
		}
	}
	return append(out, add...), nil
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
