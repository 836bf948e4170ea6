package local_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// files returns the SHA-256 of every file under the directories, so a test
// can tell that a refused statement wrote nothing.
func files(t *testing.T, dirs ...string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// partFile returns one Parquet file of table in the warehouse dir.
func partFile(t *testing.T, dir, table string) string {
	t.Helper()
	for p := range files(t, filepath.Join(dir, table)) {
		if strings.HasSuffix(p, ".parquet") {
			return p
		}
	}
	t.Fatalf("no Parquet file in %s", table)
	return ""
}

// TestQueryIsReadOnly: DuckDB's own parser decides what runs. Only one
// SELECT statement runs; whatever the text hides in comments, quotes or
// escapes, a statement that writes, attaches, loads or changes a setting is
// refused, and no file is written, in the warehouse or anywhere else.
// The first five are the ways past the keyword scanner `inventory sql`
// once had (each wrote a file then).
func TestQueryIsReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := loadFixtures(t)
	out := t.TempDir()
	// A Parquet file of the warehouse's own shape, outside it.
	outside := filepath.Join(out, "forged.parquet")
	forged := filepath.Join(dir, "adjustments", "dt=2026-03-01", "part-forged.parquet")
	copyTo := func(p string) string {
		return "COPY (SELECT * FROM adjustments) TO '" + p + "' (FORMAT parquet)"
	}
	// A file the views read: DuckDB may open it (allowed_paths), so only
	// the statement-type check stands between it and a COPY that writes
	// in place (a COPY writes a temporary file first by default, which
	// DuckDB refuses).
	existing := partFile(t, dir, "adjustments")
	inPlace := "COPY (SELECT * FROM adjustments) TO '" + existing + "' (FORMAT parquet, USE_TMP_FILE false)"
	before := files(t, dir, out)
	for _, q := range []string{
		// A -- comment ends at a carriage return for DuckDB.
		"SELECT 1; --\r" + copyTo(forged),
		// Dollar quoting hides a quote.
		"SELECT $$'$$; " + copyTo(forged) + " --'",
		// Block comments nest.
		"SELECT 1 /* /* */ ' */; " + copyTo(forged) + " --'",
		"/* /* */ SELECT ' */ " + copyTo(forged) + " --'",
		// A backslash escapes a quote in an E'' string.
		"SELECT E'\\''; " + copyTo(forged) + " --'",
		copyTo(forged),
		copyTo(existing),
		inPlace,
		"SELECT 1; " + inPlace,
		"/* /* */ SELECT ' */ " + copyTo(existing) + " --'",
		copyTo(outside),
		"EXPORT DATABASE '" + out + "'",
		"CREATE TABLE t AS SELECT 1",
		"CREATE OR REPLACE TEMP VIEW adjustments AS SELECT 1 AS n",
		"DROP VIEW adjustments",
		"ATTACH '" + filepath.Join(out, "x.db") + "' AS x",
		"INSTALL httpfs",
		"LOAD httpfs",
		"SET enable_external_access = true",
		"SET allowed_paths = ['/']",
		"RESET lock_configuration",
		"PRAGMA enable_profiling",
		"CALL pragma_version()",
		"EXPLAIN SELECT 1",
		"EXPLAIN ANALYZE " + copyTo(existing),
		"BEGIN TRANSACTION",
		"SELECT 1; SELECT 2",
		"",
		"-- nothing",
	} {
		_, err := warehouse.QueryRows(ctx, dir, q)
		if !errors.Is(err, local.ErrReadOnly) {
			t.Errorf("%q: %v, want ErrReadOnly", q, err)
		}
	}
	// Refused too, by DuckDB's binder: the views are not tables.
	for _, q := range []string{
		"INSERT INTO adjustments (event_id) VALUES ('x')",
		"WITH x AS (SELECT 1) INSERT INTO adjustments (event_id) SELECT * FROM x",
		"DELETE FROM adjustments",
	} {
		if _, err := warehouse.QueryRows(ctx, dir, q); err == nil {
			t.Errorf("%q ran", q)
		}
	}
	if after := files(t, dir, out); !maps.Equal(before, after) {
		t.Fatalf("refused statements changed the files:\nbefore %v\nafter  %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
}

// TestQueryReadsOnlyTheWarehouse: a query reads the warehouse's Parquet
// files through its views and nothing else: no other file (not even a
// Parquet file beside it), no directory listing, no network.
func TestQueryReadsOnlyTheWarehouse(t *testing.T) {
	ctx := context.Background()
	dir := loadFixtures(t)
	// A copy of one of the warehouse's own files, outside it.
	part := partFile(t, dir, "adjustments")
	b, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "copy.parquet")
	if err := os.WriteFile(outside, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_text('/etc/hostname')",
		"SELECT * FROM '/etc/passwd'",
		"SELECT * FROM read_parquet('" + outside + "')",
		"SELECT * FROM glob('" + filepath.Dir(part) + "/*')",
		"SELECT * FROM read_json('https://example.com/x.json')",
		"SELECT * FROM sqlite_scan('" + outside + "', 't')",
		"SELECT * FROM query('COPY (SELECT 1) TO ''" + outside + ".csv''')",
	} {
		rows, err := warehouse.QueryRows(ctx, dir, q)
		if err == nil {
			t.Errorf("%q ran: %d rows", q, len(rows))
		}
	}
	if _, err := os.Stat(outside + ".csv"); err == nil {
		t.Errorf("a query wrote %s.csv", outside)
	}
	// The views still read the warehouse, and so does read_parquet of its
	// own files; DESCRIBE, SHOW, FROM and VALUES are queries too.
	for q, want := range map[string]int{
		"SELECT event_id FROM adjustments":                    10,
		"SELECT * FROM read_parquet('" + part + "') LIMIT 1":  1,
		"DESCRIBE adjustments":                                len(warehouse.Tables[0].Columns),
		"SHOW TABLES":                                         len(warehouse.Tables),
		"FROM stock_levels LIMIT 1":                           1,
		"VALUES (1), (2)":                                     2,
		"WITH x AS (SELECT 41 AS n) SELECT n + 1 FROM x":      1,
		"SELECT '--\r COPY' AS s, $$;DROP$$ AS d /* /* */ */": 1,
	} {
		rows, err := warehouse.QueryRows(ctx, dir, q)
		if err != nil || len(rows) != want {
			t.Errorf("%q: %d rows, %v; want %d rows", q, len(rows), err, want)
		}
	}
}

func TestReadOnlyErrorSaysWhy(t *testing.T) {
	dir := loadFixtures(t)
	for q, want := range map[string]string{
		"COPY adjustments TO '" + partFile(t, dir, "adjustments") + "'": "COPY",
		"SELECT * FROM read_csv('/etc/passwd')":                         "own files only",
		"SELECT 1; SELECT 2":                                            "one statement at a time",
		"  ":                                                            "empty",
		"ATTACH 'x.db'":                                                 "ATTACH",
	} {
		_, err := warehouse.QueryRows(context.Background(), dir, q)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%q: %v, want an error saying read-only and %q", q, err, want)
		}
	}
}

// TestQueryPathsThatAreNotCanonical: the files DuckDB may read are named
// as the views name them, so a warehouse reached through a relative path
// or a symbolic link reads like any other.
func TestQueryPathsThatAreNotCanonical(t *testing.T) {
	dir := loadFixtures(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(dir))
	for _, d := range []string{link, filepath.Base(dir), "./" + filepath.Base(dir) + "/../" + filepath.Base(dir)} {
		if n := count(t, d, "SELECT count(*) AS n FROM adjustments"); n != 10 {
			t.Errorf("%s: %d adjustments, want 10", d, n)
		}
	}
}
