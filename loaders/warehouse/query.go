package warehouse

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"github.com/duckdb/duckdb-go/v2"
)

// result is a query result with normalised values (see QueryRows).
type result struct {
	columns []string
	rows    [][]any
}

// queryLocal runs sql with DuckDB over the local warehouse in dir, on a new
// in-memory connection with one view per table, so every query sees the
// files written so far. A query that races a partition replacement (a file
// it listed is gone) is retried.
func queryLocal(ctx context.Context, dir, query string) (*result, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var res *result
		res, err = queryLocalOnce(ctx, dir, query)
		if err == nil {
			return res, nil
		}
		if !isVanishedFile(err) {
			break
		}
	}
	return nil, fmt.Errorf("warehouse: query %s: %w", dir, err)
}

func isVanishedFile(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "No such file") || strings.Contains(msg, "no such file")
}

func queryLocalOnce(ctx context.Context, dir, query string) (*result, error) {
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
	for _, t := range Tables {
		if _, err := conn.ExecContext(ctx, localView(dir, t, nil)); err != nil {
			// Files written before a column was added lack it: the view
			// reads NULL there, as BigQuery does for a column added later.
			have, derr := parquetColumns(ctx, conn, dir, t)
			if derr != nil {
				return nil, fmt.Errorf("view %s: %w", t.Name, err)
			}
			if _, err := conn.ExecContext(ctx, localView(dir, t, have)); err != nil {
				return nil, fmt.Errorf("view %s: %w", t.Name, err)
			}
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
	res := &result{}
	for _, c := range cols {
		res.columns = append(res.columns, c.Name())
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
		res.rows = append(res.rows, vals)
	}
	return res, rows.Err()
}

// localView returns the CREATE VIEW statement of table t: its Parquet files,
// or an empty relation with the table's columns when there are none yet.
// With have (the columns the files hold), a column none of them has is NULL.
func localView(dir string, t *Table, have map[string]bool) string {
	glob := filepath.Join(tableDir(dir, t.Name), "dt=*", "*.parquet")
	if files, _ := filepath.Glob(glob); len(files) > 0 {
		cols := make([]string, len(t.Schema))
		for i, f := range t.Schema {
			cols[i] = f.Name
			switch {
			case have != nil && !have[f.Name]:
				cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", duckType(f.Type), f.Name)
			case f.Type == bigquery.DateFieldType:
				cols[i] = fmt.Sprintf("CAST(%s AS DATE) AS %s", f.Name, f.Name)
			}
		}
		return fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s FROM read_parquet(%s, hive_partitioning = false, union_by_name = true)",
			t.Name, strings.Join(cols, ", "), sqlString(glob))
	}
	cols := make([]string, len(t.Schema))
	for i, f := range t.Schema {
		cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", duckType(f.Type), f.Name)
	}
	return fmt.Sprintf("CREATE OR REPLACE TEMP VIEW %s AS SELECT %s WHERE false", t.Name, strings.Join(cols, ", "))
}

// parquetColumns returns the columns the Parquet files of t hold.
func parquetColumns(ctx context.Context, conn *sql.Conn, dir string, t *Table) (map[string]bool, error) {
	glob := filepath.Join(tableDir(dir, t.Name), "dt=*", "*.parquet")
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(
		"SELECT name FROM parquet_schema(%s)", sqlString(glob)))
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

func duckType(t bigquery.FieldType) string {
	switch t {
	case bigquery.IntegerFieldType:
		return "BIGINT"
	case bigquery.FloatFieldType:
		return "DOUBLE"
	case bigquery.BooleanFieldType:
		return "BOOLEAN"
	case bigquery.BytesFieldType:
		return "BLOB"
	case bigquery.TimestampFieldType:
		return "TIMESTAMPTZ"
	case bigquery.DateFieldType:
		return "DATE"
	default:
		return "VARCHAR"
	}
}

// normalize maps a DuckDB value to the types QueryRows promises.
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

// text renders one value for the table and CSV formats.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	}
	return fmt.Sprint(v)
}

func (r *result) write(w io.Writer, format string) error {
	var err error
	switch format {
	case "csv":
		err = r.writeCSV(w)
	case "json":
		err = r.writeJSON(w)
	default:
		err = r.writeTable(w)
	}
	if err != nil {
		return fmt.Errorf("warehouse: write %s result: %w", format, err)
	}
	return nil
}

func (r *result) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(r.columns); err != nil {
		return err
	}
	rec := make([]string, len(r.columns))
	for _, row := range r.rows {
		for i, v := range row {
			rec[i] = text(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func (r *result) writeJSON(w io.Writer) error {
	var b strings.Builder
	b.WriteString("[")
	for i, row := range r.rows {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for j, v := range row {
			if j > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(r.columns[j])
			if t, ok := v.(time.Time); ok {
				v = text(t)
			}
			val, err := json.Marshal(v)
			if err != nil {
				return err
			}
			b.Write(k)
			b.WriteString(": ")
			b.Write(val)
		}
		b.WriteString("}")
	}
	if len(r.rows) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *result) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.columns, "\t"))
	dashes := make([]string, len(r.columns))
	for i, c := range r.columns {
		dashes[i] = strings.Repeat("-", max(len(c), 3))
	}
	fmt.Fprintln(tw, strings.Join(dashes, "\t"))
	cells := make([]string, len(r.columns))
	for _, row := range r.rows {
		for i, v := range row {
			if v == nil {
				cells[i] = "NULL"
			} else {
				cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(text(v))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	fmt.Fprintf(tw, "(%d rows)\n", len(r.rows))
	return tw.Flush()
}
