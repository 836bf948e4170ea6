package warehouse_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"
	"github.com/inventory-events/inventory/internal/testkit/bqfake"
	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery"
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"
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

func adjustment(id string, qty int64, at time.Time) warehouse.AdjustmentRow {
	pt := at.Add(time.Second)
	return warehouse.AdjustmentRow{
		EventID: id, SKU: "SKU-1", LocationID: "L1", Reason: "SOLD", Quantity: qty,
		EventTime: at, Source: "pos", Status: warehouse.StatusApplied,
		MessageID: "m-" + id, PublishTime: &pt, Attributes: `{"origin":"test"}`,
		IngestTime: at.Add(2 * time.Second),
	}
}

func TestMain(m *testing.M) {
	ptest.MainWithDefault(m, "prism")
}

func init() {
	register.Function1x1(eventToRow)
}

// eventToRow makes an adjustment row from an event ID (TestStream takes
// only elements with built-in coders).
func eventToRow(id string) warehouse.AdjustmentRow {
	return adjustment(id, -1, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
}

func eventIDs(n int, prefix string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return ids
}

// checkOnce checks that the stored event IDs are exactly want, each once.
func checkOnce(t *testing.T, got []string, want []string) {
	t.Helper()
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("%d rows stored, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d: %s, want %s (duplicate or missing)", i, got[i], want[i])
		}
	}
}

func bqEventIDs(fake interface {
	Rows(string, string, string) []map[string]any
}) []string {
	var ids []string
	for _, r := range fake.Rows(project, dataset, "adjustments") {
		ids = append(ids, r["event_id"].(string))
	}
	return ids
}

func localEventIDs(t *testing.T, dir string) []string {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), dir, "SELECT event_id FROM adjustments")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r["event_id"].(string))
	}
	return ids
}

func TestWriteRowsBoundedPrism(t *testing.T) {
	fake := startBQ(t)
	fake.Reject = func(_ string, row map[string]any) string {
		if row["event_id"] == "b0007" {
			return "rejected by test"
		}
		return ""
	}
	dir := t.TempDir()
	ids := eventIDs(1500, "b")

	p, s := beam.NewPipelineWithRoot()
	rows := beam.ParDo(s, eventToRow, beam.CreateList(s, ids))
	bqDead := warehouse.WriteRows(s, bqURI, "adjustments", rows)
	localDead := warehouse.WriteRows(s, dir, "adjustments", rows)
	passert.Count(s, bqDead, "bq dead letters", 1)
	passert.Empty(s, localDead)
	if err := ptest.Run(p); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	checkOnce(t, bqEventIDs(fake), append(ids[:7:7], ids[8:]...))
	if dl := fake.Rows(project, dataset, "dead_letters"); len(dl) != 1 || dl[0]["stage"] != "warehouse" {
		t.Errorf("dead_letters %v", dl)
	}
	checkOnce(t, localEventIDs(t, dir), ids)
}

func TestWriteRowsUnboundedPrism(t *testing.T) {
	fake := startBQ(t)
	dir := t.TempDir()
	ids := eventIDs(300, "u")

	cfg := teststream.NewConfig()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	for i := 0; i < 3; i++ {
		batch := make([]any, 0, 100)
		for _, id := range ids[i*100 : (i+1)*100] {
			batch = append(batch, id)
		}
		if err := cfg.AddElements(base+int64(i)*1000, batch...); err != nil {
			t.Fatal(err)
		}
		if err := cfg.AdvanceWatermark(base + int64(i)*1000 + 500); err != nil {
			t.Fatal(err)
		}
	}
	cfg.AdvanceWatermarkToInfinity()

	p, s := beam.NewPipelineWithRoot()
	rows := beam.ParDo(s, eventToRow, teststream.Create(s, cfg))
	passert.Empty(s, warehouse.WriteRows(s, bqURI, "adjustments", rows))
	passert.Empty(s, warehouse.WriteRows(s, dir, "adjustments", rows))
	if err := ptest.Run(p); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	checkOnce(t, bqEventIDs(fake), ids)
	checkOnce(t, localEventIDs(t, dir), ids)
}
