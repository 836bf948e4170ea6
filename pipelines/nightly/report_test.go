package nightly

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/reports"
)

func testReport(rows int) *reports.Report {
	rs := make([]reports.Row, rows)
	for i := range rs {
		rs[i] = reports.Row{SKU: "SKU-" + string(rune('A'+i%26)), LocationID: "S1", ClosingOnHand: int64(i), Threshold: 5}
	}
	start := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	return reports.New(reports.Meta{Date: "2026-03-10", TimeZone: "UTC", DayStart: start, DayEnd: start.AddDate(0, 0, 1),
		RunID: "t", GeneratedAt: start}, rs, nil)
}

// TestWriteReport writes the four files into a directory and leaves
// nothing else there.
func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	if err := writeReport(context.Background(), dir, testReport(40)); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "index.html summary.csv summary.json summary.md" {
		t.Errorf("report directory holds %s", got)
	}
	f, err := os.Open(filepath.Join(dir, jsonFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := reports.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, r := range back.Rows {
		sum += r.ClosingOnHand
	}
	if len(back.Rows) != 40 || sum != 39*40/2 || back.Totals.Keys != 40 {
		t.Errorf("summary.json reads back as %d rows, closing on-hand %d, %d keys", len(back.Rows), sum, back.Totals.Keys)
	}
}

// TestWriteReportFailure: when one file cannot be rendered, the page that
// links the data files is not published, and no temporary file is left.
func TestWriteReportFailure(t *testing.T) {
	dir := t.TempDir()
	rep := testReport(3)
	rep.Rows[1].MinutesOutOfStock = math.NaN() // JSON has no NaN
	err := writeReport(context.Background(), dir, rep)
	if err == nil || !strings.Contains(err.Error(), jsonFile) {
		t.Fatalf("WriteReport = %v, want an error naming %s", err, jsonFile)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() == indexFile || e.Name() == jsonFile || strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("after a failed render the directory holds %s", e.Name())
		}
	}
}
