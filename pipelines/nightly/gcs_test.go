package nightly

import (
	"context"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"os"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// TestGCS runs the job with its inputs and report in Cloud Storage (a fake
// GCS server speaking the JSON API, through STORAGE_EMULATOR_HOST).
func TestGCS(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	var objs []fakestorage.Object
	for _, name := range []string{"adjustments.csv", "inventory_state.json", "thresholds.csv"} {
		b, err := os.ReadFile(fixtures + name)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "inv", Name: "in/" + name}, Content: b})
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, InitialObjects: objs})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))

	wh := t.TempDir()
	seedStream(t, wh)
	cfg := Config{Date: day, Input: "gs://inv/in/adjustments*.csv", Warehouse: wh, Snapshot: "gs://inv/in/inventory_state.json",
		Thresholds: "gs://inv/in/thresholds.csv", Output: "gs://inv/reports", RunID: "gcs", Shards: 2, ChunkBytes: 256}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Keys != 5 || res.Events != 14 || res.OutputURI != "gs://inv/reports/2026-03-10" {
		t.Errorf("Run = %+v", res)
	}
	for name, ct := range map[string]string{indexFile: "text/html; charset=utf-8", CSVFile: "text/csv; charset=utf-8",
		jsonFile: "application/json"} {
		obj, err := srv.GetObject("inv", "reports/2026-03-10/"+name)
		if err != nil {
			t.Errorf("report object %s: %v", name, err)
			continue
		}
		if obj.ContentType != ct || len(obj.Content) == 0 {
			t.Errorf("report object %s: content type %q, %d bytes", name, obj.ContentType, len(obj.Content))
		}
	}
	got := dailySummary(t, wh, day)
	for k, w := range want {
		if g, ok := got[k]; ok {
			checkRow(t, k, g, w, "gcs")
		} else {
			t.Errorf("no daily_summary row for %s", k)
		}
	}
	if runs := reportRuns(t, wh); len(runs) != 1 || runs[0]["output_uri"] != "gs://inv/reports/2026-03-10" {
		t.Errorf("report_runs = %v", runs)
	}
}
