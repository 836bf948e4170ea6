package reports

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// csvColumns is the header of summary.csv: the daily_summary columns.
var csvColumns = []string{"report_date", "sku", "location_id", "opening_on_hand", "closing_on_hand",
	"received", "sold", "returned", "damaged", "adjusted", "transfer_in", "transfer_out", "counted_delta",
	"net_change", "min_on_hand", "events", "alerts_raised", "minutes_out_of_stock", "days_of_cover",
	"threshold", "streaming_on_hand", "reconciled", "sold_7d", "sold_28d"}

// WriteCSV writes every row of r as summary.csv. NULL is an empty field.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return fmt.Errorf("reports: write csv: %w", err)
	}
	i := strconv.FormatInt
	for _, x := range r.Rows {
		rec := []string{csvText(r.Date), csvText(x.SKU), csvText(x.LocationID), i(x.OpeningOnHand, 10), i(x.ClosingOnHand, 10),
			i(x.Received, 10), i(x.Sold, 10), i(x.Returned, 10), i(x.Damaged, 10), i(x.Adjusted, 10),
			i(x.TransferIn, 10), i(x.TransferOut, 10), i(x.CountedDelta, 10), i(x.NetChange, 10),
			i(x.MinOnHand, 10), i(x.Events, 10), i(x.AlertsRaised, 10), formatFloat(x.MinutesOutOfStock),
			"", i(x.Threshold, 10), "", strconv.FormatBool(x.Reconciled), i(x.Sold7d, 10), i(x.Sold28d, 10)}
		if x.DaysOfCover != nil {
			rec[18] = formatFloat(*x.DaysOfCover)
		}
		if x.StreamingOnHand != nil {
			rec[20] = i(*x.StreamingOnHand, 10)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("reports: write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("reports: write csv: %w", err)
	}
	return nil
}

// csvText neutralises a text cell that a spreadsheet would read as a
// formula (CSV injection, as OWASP describes it): a cell starting with =,
// +, -, @, a tab or a carriage return gets a leading single quote, which
// spreadsheets take as "text" and do not show. Only the text columns
// (report_date, sku, location_id) go through it, whatever they hold, so a
// SKU "-5" is text too; the numeric columns are written by strconv and
// stay numbers (-5 is the number -5).
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// mdText escapes text for summary.md: HTML's &, < and > become entities,
// so no tag, comment or autolink gets through, and the characters of
// Markdown's inline syntax (\ ` * _ [ ] | ~) get a backslash, so a SKU can
// be neither a link, nor emphasis, nor a table cell break.
var mdText = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "|", `\|`, "~", `\~`,
).Replace

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// ReadJSON reads what WriteJSON wrote.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("reports: read json: %w", err)
	}
	return &r, nil
}

//go:embed templates
var templates embed.FS

var funcs = template.FuncMap{
	"int":     func(v int64) string { return groupDigits(v) },
	"signed":  func(v int64) string { return signed(v) },
	"minutes": formatMinutes,
	"cover": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return strconv.FormatFloat(*v, 'f', 1, 64)
	},
	"streaming": func(v *int64) string {
		if v == nil {
			return "none"
		}
		return groupDigits(*v)
	},
	"head":  func(n int, rows []Row) []Row { return rows[:min(n, len(rows))] },
	"more":  func(n int, rows []Row) int64 { return int64(max(0, len(rows)-n)) },
	"count": func(rows []Row) string { return groupDigits(int64(len(rows))) },
	"pct": func(v *float64) string {
		if v == nil {
			return "–"
		}
		prec := 0
		if math.Abs(*v) < 10 {
			prec = 1
		}
		s := strconv.FormatFloat(math.Abs(*v), 'f', prec, 64) + "%"
		switch {
		case s == "0.0%":
			return "±0%"
		case *v > 0:
			return "▲ " + s
		}
		return "▼ " + s
	},
	"units": func(m Movement) string {
		if direction(m.Reason) == "net" {
			return signed(m.Units)
		}
		return groupDigits(abs(m.Units))
	},
	"direction": direction,
	"md":        mdText,
	"deref":     func(v *float64) float64 { return *v },
	"sub":       func(a, b int) int { return a - b },
	"shortdate": func(d string) string {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return d
		}
		return t.Format("Jan 2")
	},
	"hhmm": func(t time.Time, tz string) string {
		if loc, err := time.LoadLocation(tz); err == nil {
			t = t.In(loc)
		}
		return t.Format("2006-01-02 15:04 MST")
	},
}

var pageTmpl = template.Must(template.New("index.html.tmpl").Funcs(funcs).ParseFS(templates, "templates/index.html.tmpl"))
var mdTmpl = texttemplate.Must(texttemplate.New("summary.md.tmpl").Funcs(texttemplate.FuncMap(funcs)).ParseFS(templates, "templates/summary.md.tmpl"))

// listLimit caps the lists of the HTML and Markdown pages.
const listLimit = 25

type page struct {
	*Report
	Limit        int
	ReasonChart  SVG
	SoldChart    SVG
	BelowChart   SVG
	StockCharts  []stockChart
	UnitsSold    int64
	UnitsDamaged int64
	// FirstDay is the first day of the trend window; Missing lists the
	// days of it before the warehouse's data.
	FirstDay string
	Missing  []string
}

type stockChart struct {
	Series
	SVG SVG
}

// WriteHTML writes r as index.html: one self-contained page (inline CSS
// and SVG charts, no script, no network) for a manager.
func WriteHTML(w io.Writer, r *Report) error {
	p := page{Report: r, Limit: listLimit, UnitsSold: -r.Totals.Sold, UnitsDamaged: -r.Totals.Damaged}
	svg, err := reasonChart(r.ByReason)
	if err != nil {
		return fmt.Errorf("reports: write html: %w", err)
	}
	p.ReasonChart = svg
	if len(r.Days) > 0 {
		if p.SoldChart, p.BelowChart, err = trendCharts(r.Days); err != nil {
			return fmt.Errorf("reports: write html: trend chart: %w", err)
		}
		p.FirstDay = r.Days[0].Date
		for _, d := range r.Days {
			if !d.Reported {
				p.Missing = append(p.Missing, d.Date)
			}
		}
	}
	for _, s := range r.Charts {
		svg, err := stockChartSVG(s, r.DayStart, r.DayEnd, r.TimeZone)
		if err != nil {
			return fmt.Errorf("reports: write html: chart %s@%s: %w", s.SKU, s.LocationID, err)
		}
		p.StockCharts = append(p.StockCharts, stockChart{Series: s, SVG: svg})
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, p); err != nil {
		return fmt.Errorf("reports: write html: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// WriteMarkdown writes a short Markdown digest of r, for chat or email.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b bytes.Buffer
	if err := mdTmpl.Execute(&b, page{Report: r, Limit: 10, UnitsSold: -r.Totals.Sold, UnitsDamaged: -r.Totals.Damaged}); err != nil {
		return fmt.Errorf("reports: write markdown: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// groupDigits renders 1234567 as "1,234,567".
func groupDigits(v int64) string { return digits.Sprintf("%d", v) }

// digits formats numbers with English digit grouping.
var digits = message.NewPrinter(language.English)

func signed(v int64) string {
	if v > 0 {
		return "+" + groupDigits(v)
	}
	return groupDigits(v)
}

func formatMinutes(m float64) string {
	if m <= 0 {
		return "0 min"
	}
	total := int64(m + 0.5)
	if total < 60 {
		return fmt.Sprintf("%d min", total)
	}
	return fmt.Sprintf("%dh %02dm", total/60, total%60)
}
