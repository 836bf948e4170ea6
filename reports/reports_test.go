package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr[T any](v T) *T { return &v }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// sample is the report of the nightly fixture (testdata/nightly), as the
// job computes it.
func sample() *Report {
	rows := []Row{
		{SKU: "SKU-E", LocationID: "S3", MinutesOutOfStock: 1440, Threshold: 10, Reconciled: true},
		{SKU: "SKU-A", LocationID: "S1", OpeningOnHand: 18, ClosingOnHand: 9, Received: 10, Sold: -21, Returned: 1,
			CountedDelta: 1, NetChange: -9, MinOnHand: 8, Events: 6, AlertsRaised: 1, DaysOfCover: ptr(9.0 / 21),
			Threshold: 10, StreamingOnHand: ptr[int64](9), Reconciled: true},
		{SKU: "SKU-B", LocationID: "S1", OpeningOnHand: 5, Received: 6, Sold: -9, Damaged: -2, NetChange: -5,
			Events: 4, AlertsRaised: 2, MinutesOutOfStock: 390, DaysOfCover: ptr(0.0), Threshold: 4,
			StreamingOnHand: ptr[int64](0), Reconciled: true},
		{SKU: "SKU-C", LocationID: "S2", OpeningOnHand: 8, ClosingOnHand: 9, TransferIn: 5, TransferOut: -3,
			Adjusted: -1, NetChange: 1, MinOnHand: 8, Events: 3, AlertsRaised: 1, Threshold: 10,
			StreamingOnHand: ptr[int64](10)},
		{SKU: "SKU-D", LocationID: "S2", ClosingOnHand: 3, Received: 3, NetChange: 3, MinOnHand: 3, Events: 1,
			AlertsRaised: 1, Threshold: 10},
	}
	charts := []Series{
		{SKU: "SKU-B", LocationID: "S1", Threshold: 4, Points: []Point{{at("2026-03-10T00:00:00Z"), 5},
			{at("2026-03-10T06:00:00Z"), 0}, {at("2026-03-10T10:30:00Z"), 6}, {at("2026-03-10T20:00:00Z"), 4},
			{at("2026-03-10T22:00:00Z"), 0}}},
		{SKU: "SKU-A", LocationID: "S1", Threshold: 10, Points: []Point{{at("2026-03-10T00:00:00Z"), 18},
			{at("2026-03-10T08:00:00Z"), 13}, {at("2026-03-10T09:00:00Z"), 23}, {at("2026-03-10T11:00:00Z"), 19},
			{at("2026-03-10T12:00:00Z"), 20}, {at("2026-03-10T15:00:00Z"), 8}, {at("2026-03-10T16:00:00Z"), 9}}},
	}
	return New(Meta{Date: "2026-03-10", TimeZone: "UTC", DayStart: at("2026-03-10T00:00:00Z"),
		DayEnd: at("2026-03-11T00:00:00Z"), RunID: "run-golden", GeneratedAt: at("2026-03-11T03:00:05Z")}, rows, charts)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestNew(t *testing.T) {
	r := sample()
	tt := r.Totals
	if tt.Keys != 5 || tt.SKUs != 5 || tt.Locations != 3 || tt.Events != 14 || tt.Sold != -30 ||
		tt.Received != 19 || tt.NetChange != -10 || tt.KeysOutOfStock != 2 || tt.KeysStockedOut != 2 ||
		tt.KeysBelow != 3 || tt.AlertsRaised != 5 || tt.Mismatches != 2 || tt.MinutesOutOfStock != 1830 {
		t.Errorf("totals = %+v", tt)
	}
	if len(r.StockOuts) != 2 || r.StockOuts[0].SKU != "SKU-E" || r.StockOuts[1].SKU != "SKU-B" {
		t.Errorf("stock-outs = %v, want SKU-E then SKU-B", r.StockOuts)
	}
	if len(r.TopMovers) != 4 || r.TopMovers[0].SKU != "SKU-A" || r.TopMovers[1].SKU != "SKU-B" {
		t.Errorf("top movers = %v, want SKU-A, SKU-B first and no idle key", r.TopMovers)
	}
	if len(r.BelowThreshold) != 3 || r.BelowThreshold[0].SKU != "SKU-D" {
		t.Errorf("below threshold = %v, want SKU-D (7 below) first", r.BelowThreshold)
	}
	if r.Rows[0].SKU != "SKU-A" || r.Charts[0].SKU != "SKU-A" {
		t.Errorf("rows and charts are not sorted by key")
	}
}

func TestCSVGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.csv", b.Bytes())
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.json", b.Bytes())
	back, err := ReadJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Totals != sample().Totals || len(back.Rows) != 5 || *back.Rows[0].DaysOfCover != 9.0/21 {
		t.Errorf("summary.json does not read back: %+v", back.Totals)
	}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.md", b.Bytes())
}

func TestHTML(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if *update {
		// Kept for looking at in a browser; not compared (SVG output
		// belongs to the chart library).
		os.WriteFile(filepath.Join("testdata", "index.html"), b.Bytes(), 0o644)
	}
	headline := map[string]string{"keys": "5", "events": "14", "received": "19", "sold": "30", "net": "-10",
		"closing": "21", "out": "2", "stocked-out": "2", "below": "3", "alerts": "5", "mismatches": "2"}
	for id, want := range headline {
		re := regexp.MustCompile(`id="` + id + `">([^<]*)<`)
		m := re.FindStringSubmatch(page)
		if m == nil || m[1] != want {
			t.Errorf("headline %s = %v, want %s", id, m, want)
		}
	}
	for _, want := range []string{
		`<td class="k">SKU-E</td><td class="k">S3</td><td>24h 00m</td>`,      // out all day
		`<td class="k">SKU-B</td><td class="k">S1</td><td>6h 30m</td>`,       // 270 + 120 minutes
		`<td class="k">SKU-C</td><td class="k">S2</td><td>9</td><td>10</td>`, // mismatch: batch 9, stream 10
		`<td class="k">SKU-D</td><td class="k">S2</td><td>3</td><td>none</td>`,
		`<h3>SKU-A @ S1</h3>`, `<h3>SKU-B @ S1</h3>`, "SOLD", "TRANSFER_OUT",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<svg"); n != 3 {
		t.Errorf("page has %d SVG charts, want 3 (reasons + 2 keys)", n)
	}
	// Offline: no script, stylesheet, image or font fetched from anywhere.
	for _, bad := range []string{"<script", "<link", "src=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: it must be self-contained", bad)
		}
	}
	if strings.Count(page, "http") != strings.Count(page, "http://www.w3.org/") {
		t.Errorf("page refers to a URL other than the SVG namespaces")
	}
}
