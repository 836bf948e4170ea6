package bigquery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/inventory-events/inventory/internal/testkit/bqfake"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/loaders/warehouse/bigquery"
	"google.golang.org/grpc/codes"
)

const (
	project = "test-project"
	dataset = "inventory"
	bqURI   = "bq://" + project + "." + dataset
)

// startBQ starts the fakes, points the environment at them and runs setup.
func startBQ(t *testing.T) *bqfake.Server {
	t.Helper()
	fake := bqfake.Start(t)
	fake.SetEnv(t)
	if _, err := warehouse.Setup(context.Background(), bqURI, "EU", false); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return fake
}

func TestSetupBigQuery(t *testing.T) {
	ctx := context.Background()
	fake := bqfake.Start(t)
	fake.SetEnv(t)

	planned, err := warehouse.Setup(ctx, bqURI, "EU", true)
	if err != nil {
		t.Fatalf("Setup dry run: %v", err)
	}
	if len(planned) != 1+len(warehouse.Tables) || fake.Dataset(project, dataset) != nil {
		t.Fatalf("dry run: got %q and dataset %v, want one planned line per table and the dataset and nothing created", planned, fake.Dataset(project, dataset))
	}

	lines, err := warehouse.Setup(ctx, bqURI, "EU", false)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	want := []string{
		"dataset test-project.inventory: created in EU",
		"table test-project.inventory.adjustments: created (partitioned by DATE(event_time), clustered by sku, location_id)",
		"table test-project.inventory.stock_levels: created (partitioned by DATE(event_time), clustered by sku, location_id)",
		"table test-project.inventory.low_stock_alerts: created (partitioned by DATE(alert_time), clustered by sku, location_id)",
		"table test-project.inventory.dead_letters: created (partitioned by DATE(dead_lettered_at), clustered by stage, reason)",
		"table test-project.inventory.daily_summary: created (partitioned by DATE(report_date), clustered by sku, location_id)",
		"table test-project.inventory.report_runs: created (partitioned by DATE(report_date), clustered by status)",
		"table test-project.inventory.threshold_changes: created (partitioned by DATE(changed_at), clustered by sku, location_id)",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("Setup lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if loc := fake.Dataset(project, dataset).Location; loc != "EU" {
		t.Errorf("dataset location %q, want EU", loc)
	}
	if got := fake.TableNames(project, dataset); !slices.Equal(got, []string{"adjustments", "daily_summary", "dead_letters", "low_stock_alerts", "report_runs", "stock_levels", "threshold_changes"}) {
		t.Errorf("tables %v", got)
	}
	for _, tb := range warehouse.Tables {
		meta := fake.Table(project, dataset, tb.Name)
		if meta.Description == "" {
			t.Errorf("%s: no description", tb.Name)
		}
		if meta.TimePartitioning == nil || meta.TimePartitioning.Type != "DAY" || meta.TimePartitioning.Field != tb.PartitionColumn {
			t.Errorf("%s: partitioning %+v, want DAY on %s", tb.Name, meta.TimePartitioning, tb.PartitionColumn)
		}
		if meta.Clustering == nil || !slices.Equal(meta.Clustering.Fields, tb.Clustering) {
			t.Errorf("%s: clustering %+v, want %v", tb.Name, meta.Clustering, tb.Clustering)
		}
		if len(meta.Schema.Fields) != len(tb.Columns) {
			t.Fatalf("%s: %d columns, want %d", tb.Name, len(meta.Schema.Fields), len(tb.Columns))
		}
		for i, f := range meta.Schema.Fields {
			w := tb.Columns[i]
			if f.Name != w.Name || f.Type != string(w.Type) || f.Description != w.Description || f.Description == "" || (f.Mode == "REQUIRED") != w.Required {
				t.Errorf("%s column %d: got %s %s %s %q, want %s %s required=%v %q", tb.Name, i, f.Name, f.Type, f.Mode, f.Description, w.Name, w.Type, w.Required, w.Description)
			}
		}
	}
	// adjustments keeps the Pub/Sub metadata.
	adj := fake.Table(project, dataset, "adjustments")
	var names []string
	for _, f := range adj.Schema.Fields {
		names = append(names, f.Name)
	}
	for _, c := range []string{"message_id", "publish_time", "attributes"} {
		if !slices.Contains(names, c) {
			t.Errorf("adjustments lacks %s", c)
		}
	}

	// A second run changes nothing.
	again, err := warehouse.Setup(ctx, bqURI, "EU", false)
	if err != nil {
		t.Fatalf("Setup again: %v", err)
	}
	for _, l := range again {
		if !strings.HasSuffix(l, ": unchanged") {
			t.Errorf("second Setup: %q, want unchanged", l)
		}
	}
	before := fake.Stats()

	// A table created by an older version lacks a column: setup adds it.
	fake.DropColumn(project, dataset, "adjustments", "ingest_time")
	lines, err = warehouse.Setup(ctx, bqURI, "EU", false)
	if err != nil {
		t.Fatalf("Setup after a new column: %v", err)
	}
	if got, want := lines[1], "table test-project.inventory.adjustments: updated: added columns ingest_time"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	fields := fake.Table(project, dataset, "adjustments").Schema.Fields
	last := fields[len(fields)-1]
	if last.Name != "ingest_time" || last.Type != "TIMESTAMP" || last.Mode == "REQUIRED" || last.Description == "" {
		t.Errorf("added column %+v", last)
	}
	if got := fake.Stats().TablePatches - before.TablePatches; got != 1 {
		t.Errorf("%d table patches, want 1", got)
	}
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func adjustment(id string, qty int64, at string) warehouse.AdjustmentRow {
	pt := ts(at).Add(time.Second)
	return warehouse.AdjustmentRow{
		EventID: id, SKU: "SKU-1", LocationID: "L1", Reason: "SOLD", Quantity: qty,
		EventTime: ts(at), Source: "pos", Status: warehouse.StatusApplied,
		MessageID: "m-" + id, PublishTime: &pt, Attributes: `{"origin":"test"}`,
		IngestTime: ts(at).Add(2 * time.Second),
	}
}

func TestBigQueryWriteDecodedRows(t *testing.T) {
	ctx := context.Background()
	fake := startBQ(t)
	w, err := warehouse.Open(ctx, bqURI)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	noPub := adjustment("e2", 5, "2026-03-01T10:00:00Z")
	noPub.PublishTime = nil
	noPub.Reason = "RECEIVED"
	if _, err := w.Write(ctx, warehouse.Rows([]warehouse.AdjustmentRow{adjustment("e1", -2, "2026-03-01T09:30:00.123456Z"), noPub})); err != nil {
		t.Fatalf("Write: %v", err)
	}
	days := 1.5
	summary := warehouse.DailySummaryRow{ReportDate: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), SKU: "SKU-1", LocationID: "L1", ClosingOnHand: 3, Sold: -2, DaysOfCover: &days, Reconciled: true, RunID: "r1"}
	if _, err := w.Write(ctx, warehouse.Rows([]warehouse.DailySummaryRow{summary})); err != nil {
		t.Fatalf("Write summary: %v", err)
	}

	got := fake.Rows(project, dataset, "adjustments")
	want := []map[string]any{
		{"event_id": "e1", "sku": "SKU-1", "location_id": "L1", "reason": "SOLD", "quantity": int64(-2),
			"event_time": ts("2026-03-01T09:30:00.123456Z"), "source": "pos", "status": "APPLIED", "message_id": "m-e1",
			"publish_time": ts("2026-03-01T09:30:01.123456Z"), "attributes": `{"origin":"test"}`, "ingest_time": ts("2026-03-01T09:30:02.123456Z")},
		{"event_id": "e2", "sku": "SKU-1", "location_id": "L1", "reason": "RECEIVED", "quantity": int64(5),
			"event_time": ts("2026-03-01T10:00:00Z"), "source": "pos", "status": "APPLIED", "message_id": "m-e2",
			"attributes": `{"origin":"test"}`, "ingest_time": ts("2026-03-01T10:00:02Z")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("adjustments rows:\n got %v\nwant %v", got, want)
	}
	sum := fake.Rows(project, dataset, "daily_summary")
	if len(sum) != 1 || sum[0]["report_date"] != (civil.Date{Year: 2026, Month: 3, Day: 1}) || sum[0]["days_of_cover"] != 1.5 ||
		sum[0]["reconciled"] != true || sum[0]["sold"] != int64(-2) || sum[0]["streaming_on_hand"] != nil {
		t.Errorf("daily_summary rows: %v", sum)
	}
}

func TestBigQueryWriteRetriesTransientErrors(t *testing.T) {
	ctx := context.Background()
	fake := startBQ(t)
	w, err := warehouse.Open(ctx, bqURI)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fake.FailAppends(2, codes.Unavailable)
	rows := []warehouse.AdjustmentRow{adjustment("e1", -1, "2026-03-01T09:00:00Z"), adjustment("e2", -1, "2026-03-01T09:01:00Z")}
	if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	st := fake.Stats()
	if st.InjectedErrors != 2 || st.AppendRequests != 3 || st.RowsStored != 2 {
		t.Errorf("stats %+v, want 2 injected errors, 3 requests, 2 rows", st)
	}
	if got := len(fake.Rows(project, dataset, "adjustments")); got != 2 {
		t.Errorf("%d rows stored, want 2", got)
	}

	// A permanent error is not retried.
	fake.FailAppends(1, codes.PermissionDenied)
	_, err = w.Write(ctx, warehouse.Rows(rows[:1]))
	if err == nil || !strings.Contains(err.Error(), "warehouse: table bq://"+project+"."+dataset+".adjustments") || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("Write with a permanent error: %v", err)
	}
	if got := fake.Stats().AppendRequests; got != 4 {
		t.Errorf("%d append requests, want 4 (no retry of a permanent error)", got)
	}
}

// TestBigQueryTableErrors: a table that refuses the writer (permission
// denied, no such table, a schema that lacks a column of this release)
// fails the write at once, not after retries, with a TableError naming the
// table and the fix; a row that BigQuery refuses is a dead letter instead
// (TestBigQueryRejectedRowGoesToDeadLetters).
func TestBigQueryTableErrors(t *testing.T) {
	ctx := context.Background()
	rows := []warehouse.AdjustmentRow{adjustment("e1", -1, "2026-03-01T09:00:00Z")}
	for _, tc := range []struct {
		name     string
		setup    func(*testing.T) *bqfake.Server
		problem  string
		fix      string
		requests int
	}{
		{"permission denied", func(t *testing.T) *bqfake.Server {
			f := startBQ(t)
			f.FailAppends(1, codes.PermissionDenied)
			return f
		}, "permission denied", "roles/bigquery.dataEditor", 1},
		{"no such table", func(t *testing.T) *bqfake.Server {
			f := bqfake.Start(t)
			f.SetEnv(t)
			return f
		}, "no such table", "inventory setup --warehouse " + bqURI, 1},
		{"schema of an older release", func(t *testing.T) *bqfake.Server {
			f := startBQ(t)
			f.DropColumn(project, dataset, "adjustments", "ingest_time")
			return f
		}, "schema differs", "inventory setup --warehouse " + bqURI, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := tc.setup(t)
			before := fake.Stats().AppendRequests
			w, err := warehouse.Open(ctx, bqURI)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			_, err = w.Write(ctx, warehouse.Rows(rows))
			var te *warehouse.TableError
			if !errors.As(err, &te) || te.Table != bqURI+".adjustments" || te.Problem == "" ||
				!strings.Contains(err.Error(), tc.problem) || !strings.Contains(te.Fix, tc.fix) {
				t.Fatalf("Write = %v, want a TableError of %s.adjustments: %s, fix %q", err, bqURI, tc.problem, tc.fix)
			}
			if n := fake.Stats().AppendRequests - before; n > tc.requests {
				t.Errorf("%d append requests, want %d: a table error is not retried", n, tc.requests)
			}
			if got := len(fake.Rows(project, dataset, "adjustments")); got != 0 {
				t.Errorf("%d rows stored", got)
			}
		})
	}
}

func TestBigQueryRejectedRowGoesToDeadLetters(t *testing.T) {
	ctx := context.Background()
	fake := startBQ(t)
	fake.Reject = func(table string, row map[string]any) string {
		if row["sku"] == "BAD" {
			return "sku BAD is not allowed"
		}
		return ""
	}
	w, err := warehouse.Open(ctx, bqURI)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	good := adjustment("good", -1, "2026-03-01T09:00:00Z")
	outOfRange := adjustment("far-future", -1, "2026-03-01T09:00:00Z")
	outOfRange.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	bad := adjustment("bad-sku", -1, "2026-03-01T09:00:00Z")
	bad.SKU = "BAD"
	if _, err := w.Write(ctx, warehouse.Rows([]warehouse.AdjustmentRow{outOfRange, good, bad})); err != nil {
		t.Fatalf("Write: %v", err)
	}
	rows := fake.Rows(project, dataset, "adjustments")
	if len(rows) != 1 || rows[0]["event_id"] != "good" {
		t.Errorf("adjustments: %v, want only the good row", rows)
	}
	dl := fake.Rows(project, dataset, "dead_letters")
	if len(dl) != 2 {
		t.Fatalf("dead_letters: %v, want 2 rows", dl)
	}
	wantErr := []string{"Timestamp field value is out of range", "sku BAD is not allowed"}
	wantID := []string{"far-future", "bad-sku"}
	for i, r := range dl {
		if r["reason"] != "warehouse_rejected" || r["stage"] != "warehouse" || r["origin"] != bqURI+"/adjustments" ||
			!strings.Contains(r["error"].(string), wantErr[i]) || r["attributes"] != `{"table":"adjustments","warehouse":"`+bqURI+`"}` {
			t.Errorf("dead letter %d: %v", i, r)
		}
		var payload map[string]any
		if err := json.Unmarshal(r["payload"].([]byte), &payload); err != nil || payload["event_id"] != wantID[i] {
			t.Errorf("dead letter %d payload %s: %v", i, r["payload"], err)
		}
	}
}

func TestBigQueryReplaceDate(t *testing.T) {
	ctx := context.Background()
	fake := startBQ(t)
	day := civil.Date{Year: 2026, Month: 3, Day: 1}
	row := func(sku string, date time.Time, closing int64) warehouse.DailySummaryRow {
		return warehouse.DailySummaryRow{ReportDate: date, SKU: sku, LocationID: "L1", ClosingOnHand: closing, RunID: "r"}
	}
	if err := warehouse.ReplaceDate(ctx, bqURI, day.AddDays(1), []warehouse.DailySummaryRow{row("A", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 9)}); err != nil {
		t.Fatalf("ReplaceDate next day: %v", err)
	}
	for _, closing := range []int64{1, 2} {
		rows := []warehouse.DailySummaryRow{row("A", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), closing), row("B", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), closing)}
		if err := warehouse.ReplaceDate(ctx, bqURI, day, rows); err != nil {
			t.Fatalf("ReplaceDate: %v", err)
		}
	}
	var got []string
	for _, r := range fake.Rows(project, dataset, "daily_summary") {
		got = append(got, r["report_date"].(civil.Date).String()+" "+r["sku"].(string)+" "+jsonString(r["closing_on_hand"]))
	}
	slices.Sort(got)
	want := []string{"2026-03-01 A 2", "2026-03-01 B 2", "2026-03-02 A 9"}
	if !slices.Equal(got, want) {
		t.Errorf("daily_summary after two runs: %v, want %v", got, want)
	}
	if err := warehouse.ReplaceDate(ctx, bqURI, day, []warehouse.DailySummaryRow{row("A", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 1)}); err == nil {
		t.Error("ReplaceDate with a row of another date: no error")
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBigQueryRequestsCappedByBytes writes rows of about 1 MB: the writer
// sends them in several AppendRows requests, each under BigQuery's 10 MB
// limit (the fake refuses larger ones, as BigQuery does); a writer without
// the byte cap is refused; a row larger than the cap alone goes to
// dead_letters, its payload cut to warehouse.MaxPayloadBytes with the
// original's length and hash.
func TestBigQueryRequestsCappedByBytes(t *testing.T) {
	ctx := context.Background()
	fake := startBQ(t)
	big := strings.Repeat("x", 1_000_000)
	var rows []warehouse.AdjustmentRow
	for i := range 20 {
		r := adjustment(fmt.Sprintf("big-%02d", i), -1, "2026-03-01T09:00:00Z")
		r.Attributes = `{"note":"` + big + `"}`
		rows = append(rows, r)
	}
	w, err := bigquery.Open(ctx, project, dataset, bigquery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
		t.Fatalf("Write of 20 rows of 1 MB: %v", err)
	}
	st := fake.Stats()
	if st.AppendRequests < 3 || st.MaxRequestBytes >= bqfake.MaxAppendBytes || st.RowsStored != 20 {
		t.Errorf("stats %+v: want at least 3 requests, each under %d bytes, 20 rows stored", st, bqfake.MaxAppendBytes)
	}

	uncapped, err := bigquery.Open(ctx, project, dataset, bigquery.Options{BatchBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer uncapped.Close()
	if _, err := uncapped.Write(ctx, warehouse.Rows(rows)); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("Write without a byte cap: %v, want the fake's refusal of a request over 10 MB", err)
	}

	small, err := bigquery.Open(ctx, project, dataset, bigquery.Options{BatchBytes: 500_000})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	rejected, err := small.Write(ctx, warehouse.Rows(rows[:1]))
	if err != nil {
		t.Fatalf("Write of a row over the cap: %v", err)
	}
	if len(rejected) != 1 || len(rejected[0].Payload) != warehouse.MaxPayloadBytes || rejected[0].PayloadBytes <= int64(len(big)) ||
		len(rejected[0].PayloadSHA256) != 64 {
		t.Fatalf("rejected %d rows (%+v); want 1 with its payload cut to %d bytes, its length and hash kept", len(rejected), summary(rejected), warehouse.MaxPayloadBytes)
	}
	dl := fake.Rows(project, dataset, "dead_letters")
	if len(dl) != 1 || !strings.Contains(dl[0]["error"].(string), "exceeds") || len(dl[0]["payload"].([]byte)) != warehouse.MaxPayloadBytes {
		t.Errorf("dead_letters: %d rows, want the oversized adjustment with its payload cut", len(dl))
	}
}

func summary(rows []warehouse.DeadLetterRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("payload %d bytes, payload_bytes %d, sha256 %q", len(r.Payload), r.PayloadBytes, r.PayloadSHA256))
	}
	return out
}
