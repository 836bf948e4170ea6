//go:build cgo

package local

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// query runs sql with DuckDB over the local warehouse in dir, on a new
// in-memory connection with one view per table, so every query sees the
// files written so far. A query that races a partition replacement (a file
// it listed is gone) is retried.
func query(ctx context.Context, dir, query string) (*warehouse.Result, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var res *warehouse.Result
		res, err = queryOnce(ctx, dir, query)
		if err == nil {
			return res, nil
		}
		if !isVanishedFile(err) {
			break
		}
	}
	return nil, fmt.Errorf("warehouse: query %s: %w", dir, err)
}

// isVanishedFile reports whether err is DuckDB's (or the OS's) word for a
// file that was listed and is gone: "No such file or directory", or, for a
// file named in a view's file list, "No files found that match the pattern"
// (what `make soak` hit when a count raced a compaction).
func isVanishedFile(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "No such file") || strings.Contains(msg, "no such file") ||
		strings.Contains(msg, "No files found that match the pattern")
}

func queryOnce(ctx context.Context, dir, query string) (*warehouse.Result, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		return nil, fmt.Errorf("set time zone: %w", err)
	}
	files := make([][]string, len(warehouse.Tables))
	var all []string
	for i, t := range warehouse.Tables {
		if files[i], err = liveFiles(dir, t.Name); err != nil {
			return nil, fmt.Errorf("view %s: %w", t.Name, err)
		}
		if queryHook != nil {
			queryHook(t.Name)
		}
		all = append(all, files[i]...)
	}
	if err := lockDown(ctx, conn, all); err != nil {
		return nil, err
	}
	for i, t := range warehouse.Tables {
		if err := createView(ctx, conn, t, files[i]); err != nil {
			return nil, fmt.Errorf("view %s: %w", t.Name, vanished(err, files[i]))
		}
	}
	var res *warehouse.Result
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("driver connection is a %T, not DuckDB's", dc)
		}
		res, err = runSelect(ctx, c, query)
		return err
	})
	if err != nil {
		return nil, vanished(err, all)
	}
	return res, nil
}

// vanished returns err saying "no such file" (isVanishedFile) if one of the
// files the views list is gone: DuckDB, which then reads the name as a
// directory to glob, reports it as a path it may not access (lockDown).
func vanished(err error, files []string) error {
	for _, f := range files {
		if _, serr := os.Stat(f); errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("%s: no such file (listed, then removed): %w", f, err)
		}
	}
	return err
}

// lockDown confines the connection before any view or query runs: DuckDB
// may open the warehouse's Parquet files of this query (files) and nothing
// else, for reading or writing; it installs and loads no extension; and no
// statement may change these settings again. Every query of the local
// warehouse runs so: an analyst's, the stream's restore and the nightly
// job's.
func lockDown(ctx context.Context, conn *sql.Conn, files []string) error {
	allowed := "[]::VARCHAR[]"
	if len(files) > 0 {
		allowed = sqlList(files)
	}
	for _, s := range []string{
		// Before enable_external_access: DuckDB refuses to widen the list
		// once access is off.
		"SET allowed_paths = " + allowed,
		"SET enable_external_access = false",
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET lock_configuration = true",
	} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("lock down: %s: %w", strings.SplitN(s, " =", 2)[0], err)
		}
	}
	return nil
}

// createView creates table t's view over files.
func createView(ctx context.Context, conn *sql.Conn, t *warehouse.Table, files []string) error {
	_, err := conn.ExecContext(ctx, localView(t, files, nil))
	if err == nil {
		return nil
	}
	// Files written before a column was added lack it: the view reads NULL
	// there, as BigQuery does for a column added later.
	have, derr := parquetColumns(ctx, conn, files)
	if derr != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, localView(t, files, have))
	return err
}

// runSelect prepares q as one statement and runs it if DuckDB's parser
// says it is a query (a SELECT statement: SELECT, WITH, FROM, VALUES,
// TABLE, DESCRIBE, SHOW, SUMMARIZE). DuckDB's own parser decides, so no
// comment, quoting or escape can hide a statement from the check.
// duckdb.Conn.Prepare refuses more than one statement; database/sql's
// PrepareContext would run every statement before the last.
func runSelect(ctx context.Context, c *duckdb.Conn, q string) (*warehouse.Result, error) {
	ds, err := c.Prepare(q)
	if err != nil {
		if strings.Contains(err.Error(), "multi-statement") {
			return nil, fmt.Errorf("%w: one statement at a time", ErrReadOnly)
		}
		if strings.TrimSpace(q) == "" || strings.Contains(err.Error(), "empty query") {
			return nil, fmt.Errorf("%w: the query is empty", ErrReadOnly)
		}
		// A COPY or a table function naming a file other than the
		// warehouse's fails here, when DuckDB binds it (lockDown).
		if de := (*duckdb.Error)(nil); errors.As(err, &de) && de.Type == duckdb.ErrorTypePermission {
			return nil, fmt.Errorf("%w: it reads the warehouse's own files only: %v", ErrReadOnly, err)
		}
		return nil, err
	}
	stmt := ds.(*duckdb.Stmt)
	defer stmt.Close()
	st, err := stmt.StatementType()
	if err != nil {
		return nil, err
	}
	if st != duckdb.STATEMENT_TYPE_SELECT {
		return nil, fmt.Errorf("%w: got %s", ErrReadOnly, statementName(st))
	}
	dr, err := stmt.QueryContext(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	res := &warehouse.Result{Columns: dr.Columns()}
	types := make([]string, len(res.Columns))
	if tn, ok := dr.(driver.RowsColumnTypeDatabaseTypeName); ok {
		for i := range types {
			types[i] = tn.ColumnTypeDatabaseTypeName(i)
		}
	}
	for {
		vals := make([]driver.Value, len(res.Columns))
		if err := dr.Next(vals); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = Normalize(v, types[i])
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// statementName names a statement type for the refusal.
func statementName(t duckdb.StmtType) string {
	switch t {
	case duckdb.STATEMENT_TYPE_INSERT, duckdb.STATEMENT_TYPE_UPDATE, duckdb.STATEMENT_TYPE_DELETE:
		return "a data change (INSERT, UPDATE, DELETE)"
	case duckdb.STATEMENT_TYPE_COPY, duckdb.STATEMENT_TYPE_EXPORT:
		return "a COPY or EXPORT"
	case duckdb.STATEMENT_TYPE_CREATE, duckdb.STATEMENT_TYPE_CREATE_FUNC, duckdb.STATEMENT_TYPE_ALTER, duckdb.STATEMENT_TYPE_DROP:
		return "a schema change (CREATE, ALTER, DROP)"
	case duckdb.STATEMENT_TYPE_ATTACH, duckdb.STATEMENT_TYPE_DETACH:
		return "an ATTACH or DETACH"
	case duckdb.STATEMENT_TYPE_LOAD, duckdb.STATEMENT_TYPE_EXTENSION:
		return "an INSTALL or LOAD"
	case duckdb.STATEMENT_TYPE_SET, duckdb.STATEMENT_TYPE_VARIABLE_SET, duckdb.STATEMENT_TYPE_PRAGMA:
		return "a SET, RESET or PRAGMA"
	case duckdb.STATEMENT_TYPE_EXPLAIN:
		return "an EXPLAIN"
	}
	return fmt.Sprintf("a statement of type %d, not a query", int(t))
}

// localView returns the CREATE VIEW statement of table t: its Parquet files
// (listed, not globbed, so a compaction's old and merged files are never
// read together: liveFiles), or an empty relation with the table's columns
// when there are none yet. With have (the columns the files hold), a column
// none of them has is NULL.
func localView(t *warehouse.Table, files []string, have map[string]bool) string {
	if len(files) > 0 {
		cols := make([]string, len(t.Columns))
		for i, f := range t.Columns {
			cols[i] = f.Name
			switch {
			case have != nil && !have[f.Name]:
				cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", DuckType(f.Type), f.Name)
			case f.Type == warehouse.TypeDate:
				cols[i] = fmt.Sprintf("CAST(%s AS DATE) AS %s", f.Name, f.Name)
			}
		}
		return fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s FROM read_parquet(%s, hive_partitioning = false, union_by_name = true)",
			t.Name, strings.Join(cols, ", "), sqlList(files))
	}
	cols := make([]string, len(t.Columns))
	for i, f := range t.Columns {
		cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", DuckType(f.Type), f.Name)
	}
	return fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s WHERE false", t.Name, strings.Join(cols, ", "))
}

// parquetColumns returns the columns the Parquet files hold.
func parquetColumns(ctx context.Context, conn *sql.Conn, files []string) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT name FROM parquet_schema(%s)", sqlList(files)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		have[name] = true
	}
	return have, rows.Err()
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlList returns a DuckDB list literal of strings.
func sqlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = sqlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// DuckType is the DuckDB type of a column of type t. It also takes
// BigQuery's standard SQL names (INT64, FLOAT64, BOOL), which a BigQuery
// table's schema may use for INTEGER, FLOAT and BOOLEAN.
func DuckType(t warehouse.ColumnType) string {
	switch t {
	case warehouse.TypeInteger, "INT64":
		return "BIGINT"
	case warehouse.TypeFloat, "FLOAT64":
		return "DOUBLE"
	case warehouse.TypeBoolean, "BOOL":
		return "BOOLEAN"
	case warehouse.TypeBytes:
		return "BLOB"
	case warehouse.TypeTimestamp:
		return "TIMESTAMPTZ"
	case warehouse.TypeDate:
		return "DATE"
	default:
		return "VARCHAR"
	}
}

// Normalize maps a value DuckDB returned to the types warehouse.Result
// promises: whole numbers as int64 (a HUGEINT beyond int64, such as a large
// SUM, as its decimal string), other numbers as float64, a DATE (dbType,
// the column's type name, is "DATE") as a civil.Date and any other time in
// UTC. The BigQuery fake's DuckDB engine hands its values on so too.
func Normalize(v any, dbType string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		if dbType == "DATE" {
			return civil.DateOf(x.UTC())
		}
		return x.UTC()
	case *big.Int:
		if x.IsInt64() {
			return x.Int64()
		}
		return x.String()
	case duckdb.Decimal:
		return x.Float64()
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}
