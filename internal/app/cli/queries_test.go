package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// docQueries returns the example queries of docs/analyst-queries.md in one
// dialect ("local" or "bigquery"), by name.
func docQueries(t *testing.T, dialect string) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/analyst-queries.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```sql\n-- (local|bigquery): (\\w+)\n(.*?)```")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		if m[1] == dialect {
			out[m[2]] = m[3]
		}
	}
	return out
}

// googleSQLToDuckDB applies the substitutions docs/analyst-queries.md says
// are the only differences between its GoogleSQL and DuckDB versions.
var googleSQLToDuckDB = []struct {
	re  *regexp.Regexp
	out string
}{
	{regexp.MustCompile(`TIMESTAMP_SUB\((.+?), INTERVAL (\d+) DAY\)`), "($1 - INTERVAL $2 DAY)"},
	{regexp.MustCompile(`COUNTIF\(([^()]*)\)`), "COUNT(*) FILTER (WHERE $1)"},
	{regexp.MustCompile(`\bDATE\(([^()]*)\)`), "CAST($1 AS DATE)"},
}

func toDuckDB(t *testing.T, q string) string {
	t.Helper()
	for _, r := range googleSQLToDuckDB {
		q = r.re.ReplaceAllString(q, r.out)
	}
	for _, bq := range []string{"TIMESTAMP_SUB", "COUNTIF", "DATE(", "CURRENT_DATE", "TIMESTAMP("} {
		if strings.Contains(q, bq) {
			t.Fatalf("GoogleSQL %s left after the documented substitutions:\n%s", bq, q)
		}
	}
	return q
}

// TestAnalystQueriesOnDemo runs the demo, then every example query of
// docs/analyst-queries.md on its warehouse: each returns rows, and the
// GoogleSQL version, with the documented substitutions, returns the same.
func TestAnalystQueriesOnDemo(t *testing.T) {
	slowtest.Skip(t, "runs the demo (Prism jobs)")
	dir := t.TempDir()
	wh := filepath.Join(dir, "warehouse")
	var out bytes.Buffer
	g := &globals{Project: "demo-queries", Logger: slog.New(slog.DiscardHandler)}
	if err := runDemo(context.Background(), g, demoConfig{Events: sampleCSV, Snapshot: sampleSnap, Thresholds: sampleTh,
		Warehouse: wh, Reports: filepath.Join(dir, "reports"), Timeout: 5 * time.Minute}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	ctx := context.Background()
	local, bq := docQueries(t, "local"), docQueries(t, "bigquery")
	if len(local) < 7 || len(local) != len(bq) {
		t.Fatalf("docs have %d local and %d bigquery queries", len(local), len(bq))
	}
	// Dead letters reach the table only from the stages that write it; an
	// empty table is the data's fault, not the query's.
	_, dl, err := warehouse.QueryTable(ctx, wh, "SELECT COUNT(*) FROM dead_letters")
	if err != nil {
		t.Fatal(err)
	}
	deadLetters := dl[0][0].(int64)
	for name, q := range local {
		t.Run(name, func(t *testing.T) {
			cols, rows, err := warehouse.QueryTable(ctx, wh, q)
			if err != nil {
				t.Fatalf("local: %v", err)
			}
			if len(rows) == 0 && !(name == "dead_letters_by_reason" && deadLetters == 0) {
				t.Errorf("no rows on the demo's data")
			}
			if bq[name] == "" {
				t.Fatal("no GoogleSQL version")
			}
			bcols, brows, err := warehouse.QueryTable(ctx, wh, toDuckDB(t, bq[name]))
			if err != nil {
				t.Fatalf("GoogleSQL version: %v", err)
			}
			if fmt.Sprint(cols, rows) != fmt.Sprint(bcols, brows) {
				t.Errorf("the versions differ:\nlocal    %v %v\nbigquery %v %v", cols, rows, bcols, brows)
			}
			switch name {
			case "alerts_per_day":
				// By the day the stock crossed, not the day the demo ran.
				for _, r := range rows {
					if d := fmt.Sprint(r[0]); d != "2026-11-24" {
						t.Errorf("alerts on %s, want every one on the sample's day 2026-11-24", d)
					}
				}
			case "top_sellers_yesterday":
				if fmt.Sprint(rows[0][0]) != "SKU-00001" {
					t.Errorf("top seller %v, want SKU-00001", rows[0])
				}
			}
			t.Logf("%d rows", len(rows))
		})
	}
}
