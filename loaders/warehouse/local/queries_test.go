package local_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

var update = flag.Bool("update", false, "rewrite testdata/warehouse/expected")

const repoRoot = "../../.."

// docQueries returns the queries of docs/analyst-queries.md in one dialect
// ("local" or "bigquery") by name.
func docQueries(t *testing.T, dialect string) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "analyst-queries.md"))
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

// loadFixtures writes testdata/warehouse/<table>.json into a new local
// warehouse, one Write per table.
func loadFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := warehouse.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	load[warehouse.AdjustmentRow](t, w, "adjustments")
	load[warehouse.StockLevelRow](t, w, "stock_levels")
	load[warehouse.AlertRow](t, w, "low_stock_alerts")
	load[warehouse.DeadLetterRow](t, w, "dead_letters")
	return dir
}

func load[T warehouse.Row](t *testing.T, w warehouse.Writer, table string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "testdata", "warehouse", table+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []T
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("%s.json: %v", table, err)
	}
	if _, err := w.Write(context.Background(), warehouse.Rows(rows)); err != nil {
		t.Fatal(err)
	}
}

func TestAnalystQueriesLocal(t *testing.T) {
	ctx := context.Background()
	dir := loadFixtures(t)
	localSQL := docQueries(t, "local")
	bq := docQueries(t, "bigquery")
	names := []string{"current_stock", "below_threshold", "alerts_per_day", "top_sellers_yesterday", "dead_letters_by_reason", "stock_history", "adjustments_by_status"}
	if len(localSQL) != len(names) || len(bq) != len(names) {
		t.Fatalf("docs have %d local and %d bigquery queries, want %d each", len(localSQL), len(bq), len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if bq[name] == "" {
				t.Errorf("no GoogleSQL version")
			}
			q := strings.ReplaceAll(localSQL[name], "current_date", "DATE '2026-03-03'")
			var out bytes.Buffer
			if err := warehouse.Query(ctx, dir, q, "csv", &out); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(repoRoot, "testdata", "warehouse", "expected", name+".csv")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}
}

func TestQueryFormats(t *testing.T) {
	ctx := context.Background()
	dir := loadFixtures(t)
	q := "SELECT event_id, quantity, event_time, publish_time IS NULL AS no_pub, CAST(event_time AS DATE) AS day FROM adjustments WHERE event_id IN ('e0', 'e7') ORDER BY event_id"
	for format, want := range map[string]string{
		"table": "event_id  quantity  event_time            no_pub  day\n" +
			"--------  --------  ----------            ------  ---\n" +
			"e0        2         2026-03-01T07:00:00Z  false   2026-03-01\n" +
			"e7        2         2026-03-03T08:00:00Z  false   2026-03-03\n" +
			"(2 rows)\n",
		"csv": "event_id,quantity,event_time,no_pub,day\n" +
			"e0,2,2026-03-01T07:00:00Z,false,2026-03-01\n" +
			"e7,2,2026-03-03T08:00:00Z,false,2026-03-03\n",
		"json": "[\n" +
			`  {"event_id": "e0", "quantity": 2, "event_time": "2026-03-01T07:00:00Z", "no_pub": false, "day": "2026-03-01"},` + "\n" +
			`  {"event_id": "e7", "quantity": 2, "event_time": "2026-03-03T08:00:00Z", "no_pub": false, "day": "2026-03-03"}` + "\n" +
			"]\n",
	} {
		var out bytes.Buffer
		if err := warehouse.Query(ctx, dir, q, format, &out); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if out.String() != want {
			t.Errorf("%s:\n%s\nwant:\n%s", format, out.String(), want)
		}
	}
	// Tables without files are empty views with the right columns.
	rows, err := warehouse.QueryRows(ctx, dir, "SELECT count(*) AS n, max(days_of_cover) AS d FROM daily_summary")
	if err != nil || len(rows) != 1 || rows[0]["n"] != int64(0) || rows[0]["d"] != nil {
		t.Errorf("empty daily_summary: %v %v", rows, err)
	}
	if err := warehouse.Query(ctx, dir, "SELECT 1", "xml", &bytes.Buffer{}); err == nil {
		t.Error("format xml: no error")
	}
}

func TestLocalConcurrentWriterAndReader(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := warehouse.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	const batches, perBatch = 40, 250
	var wg sync.WaitGroup
	wg.Add(1)
	var writeErr error
	go func() {
		defer wg.Done()
		for b := 0; b < batches; b++ {
			rows := make([]warehouse.AdjustmentRow, perBatch)
			for i := range rows {
				rows[i] = adjustment(fmt.Sprintf("c%03d-%03d", b, i), -1, "2026-03-01T09:00:00Z")
				rows[i].EventTime = rows[i].EventTime.Add(time.Duration(b) * 6 * time.Hour) // spread over days
			}
			if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
				writeErr = err
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var last int64
	reads := 0
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		rows, err := warehouse.QueryRows(ctx, dir, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM adjustments")
		if err != nil {
			t.Fatalf("query while writing: %v", err)
		}
		n, d := rows[0]["n"].(int64), rows[0]["d"].(int64)
		if n%perBatch != 0 || n != d || n < last {
			t.Fatalf("read %d rows (%d distinct) after %d: a partial or duplicated file was visible", n, d, last)
		}
		last = n
		reads++
	}
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	if last != batches*perBatch {
		t.Errorf("final count %d, want %d", last, batches*perBatch)
	}
	t.Logf("%d consistent reads while writing", reads)
}

func TestLocalReplaceDate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, closing := range []int64{1, 2} {
		rows := []warehouse.DailySummaryRow{{ReportDate: day, SKU: "A", LocationID: "L1", ClosingOnHand: closing}}
		if err := warehouse.ReplaceDate(ctx, dir, civilDate(day), rows); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := warehouse.QueryRows(ctx, dir, "SELECT report_date, closing_on_hand FROM daily_summary")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["closing_on_hand"] != int64(2) || fmt.Sprint(rows[0]["report_date"]) != "2026-03-01" {
		t.Errorf("after two runs: %v", rows)
	}
}

func TestSetupLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "warehouse")
	lines, err := warehouse.Setup(context.Background(), dir, "", false)
	if err != nil || len(lines) != len(warehouse.Tables) || !strings.HasSuffix(lines[0], ": created") {
		t.Fatalf("Setup: %q %v", lines, err)
	}
	lines, err = warehouse.Setup(context.Background(), dir, "", false)
	if err != nil || !strings.HasSuffix(lines[5], ": unchanged") {
		t.Fatalf("Setup again: %q %v", lines, err)
	}
}

func civilDate(t time.Time) civil.Date { return civil.DateOf(t) }

func TestLocalCompact(t *testing.T) {
	ctx := context.Background()
	l, dir := openTemp(t)
	pt := time.Date(2026, 3, 1, 9, 0, 1, 500000000, time.UTC)
	for i := 0; i < 5; i++ {
		r := adjustment(fmt.Sprintf("k%d", i), int64(-i), "2026-03-01T09:00:00Z")
		if i == 2 {
			r.PublishTime = nil
		} else {
			r.PublishTime = &pt
		}
		if _, err := l.Write(ctx, warehouse.Rows([]warehouse.AdjustmentRow{r})); err != nil {
			t.Fatal(err)
		}
	}
	before, err := warehouse.QueryRows(ctx, dir, "SELECT * FROM adjustments ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Compact(ctx, "adjustments", civil.Date{Year: 2026, Month: 3, Day: 1}, local.CompactPolicy{Fanout: 2})
	if err != nil || n != 5 {
		t.Fatalf("Compact: %d files, %v", n, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "adjustments", "dt=2026-03-01", "*.parquet"))
	if len(files) != 1 {
		t.Errorf("%d files after compaction, want 1", len(files))
	}
	after, err := warehouse.QueryRows(ctx, dir, "SELECT * FROM adjustments ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 5 || fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("rows changed by compaction:\n%v\n%v", before, after)
	}
}
