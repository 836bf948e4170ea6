// Package duckq answers the BigQuery fake's queries (bqfake.QueryEngine)
// with DuckDB: the dataset's tables are loaded into an in-memory database
// (again only when the fake's data changed), and the GoogleSQL is rewritten
// where the two dialects differ in what the jobs ask:
//
//   - TIMESTAMP 'literal' is TIMESTAMPTZ in DuckDB (the session is in UTC,
//     as BigQuery's TIMESTAMP is);
//   - FARM_FINGERPRINT(x) is DuckDB's hash(x): another hash, so the slices a
//     query cuts by it differ from BigQuery's, but every row is in exactly
//     one slice, which is all the jobs rely on;
//   - `quoted` names are "quoted".
//
// Anything else must be SQL both run alike (the jobs' queries are written
// so: QUALIFY with a WHERE, ROW_NUMBER, COUNT(CASE ...)). It is a stand-in,
// not BigQuery: a query BigQuery would refuse may run here.
package duckq

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/civil"
	"github.com/duckdb/duckdb-go/v2"
	bq "google.golang.org/api/bigquery/v2"

	"github.com/inventory-events/inventory/internal/testkit/bqfake"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// Engine is a bqfake.QueryEngine over one in-memory DuckDB database.
type Engine struct {
	mu      sync.Mutex
	db      *sql.DB
	loaded  int64 // the fake's version the tables were loaded at
	started bool
}

var _ bqfake.QueryEngine = (*Engine)(nil)

// New opens the in-memory database.
func New() (*Engine, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("duckq: open: %w", err)
	}
	db.SetMaxOpenConns(1) // one connection: the session's time zone holds
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		db.Close()
		return nil, fmt.Errorf("duckq: set time zone: %w", err)
	}
	return &Engine{db: db}, nil
}

// Close closes the database.
func (e *Engine) Close() error { return e.db.Close() }

var rewrites = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\bTIMESTAMP(\s+')`), "TIMESTAMPTZ$1"},
	{regexp.MustCompile(`(?i)\bFARM_FINGERPRINT\s*\(`), "hash("},
	{regexp.MustCompile("`"), `"`},
}

// rewrite returns sql in DuckDB's dialect (see the package comment).
func rewrite(sql string) string {
	for _, r := range rewrites {
		sql = r.re.ReplaceAllString(sql, r.with)
	}
	return sql
}

// Query implements bqfake.QueryEngine.
func (e *Engine) Query(ctx context.Context, query string, version int64, tables []bqfake.QueryTable) ([]*bq.TableFieldSchema, [][]any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || version != e.loaded {
		if err := e.load(ctx, tables); err != nil {
			return nil, nil, err
		}
		e.started, e.loaded = true, version
	}
	rows, err := e.db.QueryContext(ctx, rewrite(query))
	if err != nil {
		return nil, nil, fmt.Errorf("duckq: %w", err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, err
	}
	fields := make([]*bq.TableFieldSchema, len(types))
	for i, t := range types {
		fields[i] = &bq.TableFieldSchema{Name: t.Name(), Type: bqType(t.DatabaseTypeName()), Mode: "NULLABLE"}
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("duckq: scan: %w", err)
		}
		for i, v := range vals {
			// fields[i].Type is "DATE" exactly when DuckDB's type is.
			vals[i] = local.Normalize(v, fields[i].Type)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("duckq: %w", err)
	}
	return fields, out, nil
}

// load replaces the database's tables with tables.
func (e *Engine) load(ctx context.Context, tables []bqfake.QueryTable) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, t := range tables {
		cols := make([]string, len(t.Schema))
		for i, f := range t.Schema {
			cols[i] = fmt.Sprintf("%q %s", f.Name, local.DuckType(warehouse.ColumnType(f.Type)))
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE TABLE %q (%s)", t.Name, strings.Join(cols, ", "))); err != nil {
			return fmt.Errorf("duckq: table %s: %w", t.Name, err)
		}
		err := conn.Raw(func(dc any) error {
			a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", t.Name)
			if err != nil {
				return err
			}
			vals := make([]driver.Value, len(t.Schema))
			for _, r := range t.Rows {
				for i, f := range t.Schema {
					vals[i] = duckValue(r[f.Name])
				}
				if err := a.AppendRow(vals...); err != nil {
					a.Close()
					return err
				}
			}
			return a.Close()
		})
		if err != nil {
			return fmt.Errorf("duckq: load %s: %w", t.Name, err)
		}
	}
	return nil
}

func duckValue(v any) driver.Value {
	if d, ok := v.(civil.Date); ok {
		return d.In(time.UTC)
	}
	return v
}

// bqType is the BigQuery type of a DuckDB result column.
func bqType(duck string) string {
	switch d := strings.ToUpper(duck); {
	case strings.Contains(d, "TIMESTAMP"):
		return "TIMESTAMP"
	case d == "DATE":
		return "DATE"
	case strings.HasSuffix(d, "INT") || d == "BIGINT" || d == "INTEGER" || d == "HUGEINT" || d == "UBIGINT" || d == "SMALLINT" || d == "TINYINT":
		return "INTEGER"
	case d == "DOUBLE" || d == "FLOAT" || d == "REAL" || strings.HasPrefix(d, "DECIMAL"):
		return "FLOAT"
	case d == "BOOLEAN":
		return "BOOLEAN"
	case d == "BLOB":
		return "BYTES"
	}
	return "STRING"
}
