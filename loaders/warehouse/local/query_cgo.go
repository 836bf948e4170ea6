//go:build cgo

package local

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
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
	for _, t := range warehouse.Tables {
		files, err := liveFiles(dir, t.Name)
		if err != nil {
			return nil, fmt.Errorf("view %s: %w", t.Name, err)
		}
		if queryHook != nil {
			queryHook(t.Name)
		}
		if _, err := conn.ExecContext(ctx, localView(t, files, nil)); err != nil {
			// Files written before a column was added lack it: the view
			// reads NULL there, as BigQuery does for a column added later.
			have, derr := parquetColumns(ctx, conn, files)
			if derr != nil {
				return nil, fmt.Errorf("view %s: %w", t.Name, err)
			}
			if _, err = conn.ExecContext(ctx, localView(t, files, have)); err == nil {
				continue
			}
			return nil, fmt.Errorf("view %s: %w", t.Name, err)
		}
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	res := &warehouse.Result{}
	for _, c := range cols {
		res.Columns = append(res.Columns, c.Name())
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			vals[i] = normalize(v, cols[i].DatabaseTypeName())
		}
		res.Rows = append(res.Rows, vals)
	}
	return res, rows.Err()
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
				cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", duckType(f.Type), f.Name)
			case f.Type == warehouse.TypeDate:
				cols[i] = fmt.Sprintf("CAST(%s AS DATE) AS %s", f.Name, f.Name)
			}
		}
		return fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s FROM read_parquet(%s, hive_partitioning = false, union_by_name = true)",
			t.Name, strings.Join(cols, ", "), sqlList(files))
	}
	cols := make([]string, len(t.Columns))
	for i, f := range t.Columns {
		cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", duckType(f.Type), f.Name)
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

func duckType(t warehouse.ColumnType) string {
	switch t {
	case warehouse.TypeInteger:
		return "BIGINT"
	case warehouse.TypeFloat:
		return "DOUBLE"
	case warehouse.TypeBoolean:
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

// normalize maps a DuckDB value to the types warehouse.Result promises.
func normalize(v any, dbType string) any {
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
