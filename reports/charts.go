package reports

import (
	"bytes"
	"html/template"
	"io"
	"math"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// Charts are drawn by go-chart as SVG and inlined in the page, so the page
// needs no script and no network. Every y-axis is on the left, next to the
// bars or lines, with round ticks; every quantity is in units, positive for
// units sold.

var (
	colorIn    = drawing.ColorFromHex("2e7d32")
	colorOut   = drawing.ColorFromHex("c62828")
	colorNeut  = drawing.ColorFromHex("546e7a")
	colorLine  = drawing.ColorFromHex("1565c0")
	colorLimit = drawing.ColorFromHex("ef6c00")
	colorNone  = drawing.ColorFromHex("cfd8dc")
)

const (
	axisFont  = 11.0
	labelFont = 10.0
	nameRoom  = 20 // pixels left of the y-axis for its name
)

// direction of a reason: "in" adds stock, "out" removes it, "net" is a
// correction either way.
func direction(reason string) string {
	switch reason {
	case "RECEIVED", "RETURNED", "TRANSFER_IN":
		return "in"
	case "SOLD", "DAMAGED", "TRANSFER_OUT":
		return "out"
	}
	return "net"
}

// reasonChart draws the units moved per reason as bars of absolute units,
// green for stock in, red for stock out, grey for net corrections. Labels
// are the reasons as the tables spell them.
func reasonChart(ms []Movement) (SVG, error) {
	var bars []chart.Value
	maxV := 0.0
	for _, m := range ms {
		v := math.Abs(float64(m.Units))
		maxV = max(maxV, v)
		c := colorIn
		switch direction(m.Reason) {
		case "out":
			c = colorOut
		case "net":
			c = colorNeut
		}
		bars = append(bars, chart.Value{Label: m.Reason, Value: v,
			Style: chart.Style{FillColor: c, StrokeColor: c, StrokeWidth: 1}})
	}
	return barChart(bars, 40, 20, 280, 0, maxV, "units")
}

// barChart draws bars of barWidth with spacing, the chart just as wide as
// the bars and the y-axis (named name) beside them, from lo to at least hi
// in round ticks. The bars' labels are drawn centred under them, on two
// staggered lines when neighbours would touch.
func barChart(bars []chart.Value, barWidth, spacing, height int, lo, hi float64, name string) (SVG, error) {
	ticks, rng := roundTicks(lo, hi)
	labels := make([]string, len(bars))
	for i := range bars {
		labels[i], bars[i].Label = bars[i].Label, ""
	}
	need := len(bars) * (barWidth + spacing)
	var canvas chart.Box
	bc := chart.BarChart{
		Width:      need + 16,
		Height:     height,
		BarWidth:   barWidth,
		BarSpacing: spacing,
		Background: chart.Style{Padding: chart.Box{Top: 12, Left: nameRoom, Right: 12, Bottom: 34}},
		YAxis:      namedAxis(name, rng, ticks),
		Bars:       bars,
		Elements: []chart.Renderable{barLabels(labels, barWidth, spacing),
			func(_ chart.Renderer, c chart.Box, _ chart.Style) { canvas = c }},
	}
	// go-chart narrows the canvas by the width of the y-axis: measure it
	// on a first rendering, then widen the chart by as much, so that the
	// bars keep their width and the axis stays beside them.
	if err := bc.Render(chart.SVG, io.Discard); err != nil {
		return SVG{}, err
	}
	bc.Width += need - canvas.Width()
	return svgOf(bc, bc.Width)
}

// namedAxis is a y-axis on the left, named name.
func namedAxis(name string, rng *chart.ContinuousRange, ticks []chart.Tick) chart.YAxis {
	return chart.YAxis{
		AxisType:  chart.YAxisSecondary,
		Name:      name,
		NameStyle: chart.Style{FontSize: labelFont, TextRotationDegrees: 270},
		Style:     chart.Style{FontSize: axisFont},
		Range:     rng,
		Ticks:     ticks,
	}
}

// barLabels draws labels centred under the bars of a BarChart whose bars
// are barWidth wide with spacing between them (go-chart's own labels wrap
// inside the bar's pitch, breaking words).
func barLabels(labels []string, barWidth, spacing int) chart.Renderable {
	return func(r chart.Renderer, canvas chart.Box, defaults chart.Style) {
		st := chart.Style{FontSize: labelFont, FontColor: chart.DefaultTextColor}.InheritFrom(defaults)
		st.WriteTextOptionsToRenderer(r)
		r.ClearTextRotation()
		// Stagger when two neighbouring labels would touch.
		pitch := barWidth + spacing
		stagger, prev, prevWidth := false, -1, 0
		for i, l := range labels {
			if l == "" {
				continue
			}
			w := r.MeasureText(l).Width()
			if prev >= 0 && (i-prev)*pitch < (w+prevWidth)/2+6 {
				stagger = true
			}
			prev, prevWidth = i, w
		}
		n := 0
		for i, l := range labels {
			if l == "" {
				continue
			}
			tb := r.MeasureText(l)
			x := canvas.Left + i*pitch + spacing/2 + barWidth/2 - tb.Width()/2
			y := canvas.Bottom + 6 + tb.Height()
			if stagger && n%2 == 1 {
				y += tb.Height() + 3
			}
			r.Text(l, x, y)
			n++
		}
	}
}

// trendCharts draws the 28 days of days: units sold per day, and keys
// below threshold at close (out of stock included). Days without a
// summary are grey stubs. Every 7th day is labelled, ending with the last.
func trendCharts(days []Day) (sold, below SVG, err error) {
	var sb, bb []chart.Value
	var maxSold, maxBelow float64
	for i, d := range days {
		label := ""
		if (len(days)-1-i)%7 == 0 {
			if t, err := time.Parse(time.DateOnly, d.Date); err == nil {
				label = t.Format("Jan 2")
			}
		}
		sc, bcol := colorLine, colorLimit
		s, b := float64(d.UnitsSold), float64(d.KeysBelow)
		if !d.Reported {
			sc, bcol = colorNone, colorNone
		}
		maxSold, maxBelow = max(maxSold, s), max(maxBelow, b)
		sb = append(sb, chart.Value{Label: label, Value: s, Style: chart.Style{FillColor: sc, StrokeColor: sc, StrokeWidth: 1}})
		bb = append(bb, chart.Value{Label: label, Value: b, Style: chart.Style{FillColor: bcol, StrokeColor: bcol, StrokeWidth: 1}})
	}
	if sold, err = barChart(sb, 12, 5, 220, 0, maxSold, "units"); err != nil {
		return SVG{}, SVG{}, err
	}
	below, err = barChart(bb, 12, 5, 220, 0, maxBelow, "keys")
	return sold, below, err
}

// stockChartSVG draws a key's on-hand over the day as a step line with its
// threshold. The y-axis starts at zero unless the stock went below it.
func stockChartSVG(s Series, start, end time.Time, tz string) (SVG, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	var xs []time.Time
	var ys []float64
	lo, hi := 0.0, float64(s.Threshold)
	for i, p := range s.Points {
		t := p.Time.In(loc)
		if i > 0 {
			// Hold the previous value until this change: a step.
			xs = append(xs, t)
			ys = append(ys, ys[len(ys)-1])
		}
		xs = append(xs, t)
		ys = append(ys, float64(p.OnHand))
		lo, hi = min(lo, float64(p.OnHand)), max(hi, float64(p.OnHand))
	}
	if len(ys) > 0 {
		xs = append(xs, end.In(loc))
		ys = append(ys, ys[len(ys)-1])
	}
	ticks, rng := roundTicks(lo, hi)
	series := []chart.Series{
		chart.TimeSeries{Name: "on hand", XValues: xs, YValues: ys,
			Style: chart.Style{StrokeColor: colorLine, StrokeWidth: 2}},
		chart.TimeSeries{Name: "threshold", XValues: []time.Time{start.In(loc), end.In(loc)},
			YValues: []float64{float64(s.Threshold), float64(s.Threshold)},
			Style:   chart.Style{StrokeColor: colorLimit, StrokeWidth: 1.5, StrokeDashArray: []float64{5, 4}}},
	}
	if lo < 0 {
		series = append(series, chart.TimeSeries{Name: "zero", XValues: []time.Time{start.In(loc), end.In(loc)},
			YValues: []float64{0, 0}, Style: chart.Style{StrokeColor: colorOut, StrokeWidth: 1}})
	}
	c := chart.Chart{
		Width: 460, Height: 220,
		Background: chart.Style{Padding: chart.Box{Top: 12, Left: nameRoom, Right: 16, Bottom: 8}},
		XAxis: chart.XAxis{
			Style:          chart.Style{FontSize: axisFont},
			Range:          &chart.ContinuousRange{Min: chart.TimeToFloat64(start.In(loc)), Max: chart.TimeToFloat64(end.In(loc))},
			ValueFormatter: func(v interface{}) string { return chart.TimeFromFloat64(v.(float64)).In(loc).Format("15:04") },
			Ticks:          hourTicks(start.In(loc), end.In(loc)),
		},
		YAxis:  namedAxis("units", rng, ticks),
		Series: series,
	}
	return svgOf(c, c.Width)
}

func hourTicks(start, end time.Time) []chart.Tick {
	var ticks []chart.Tick
	for t := start; !t.After(end); t = t.Add(6 * time.Hour) {
		ticks = append(ticks, chart.Tick{Value: chart.TimeToFloat64(t), Label: t.Format("15:04")})
	}
	return ticks
}

// roundTicks returns about five ticks at a round step (1, 2 or 5 times a
// power of ten, at least 1) covering [lo, hi], and the range they span.
func roundTicks(lo, hi float64) ([]chart.Tick, *chart.ContinuousRange) {
	step := roundStep(hi - lo)
	first := math.Floor(lo/step) * step
	last := math.Ceil(hi/step) * step
	if last <= first {
		last = first + step
	}
	var ticks []chart.Tick
	for v := first; v <= last+step/2; v += step {
		ticks = append(ticks, chart.Tick{Value: v, Label: groupDigits(int64(math.Round(v)))})
	}
	return ticks, &chart.ContinuousRange{Min: first, Max: last}
}

// roundStep returns the tick step for a span: 1, 2 or 5 times a power of
// ten, at least 1, giving at most 5 intervals.
func roundStep(span float64) float64 {
	if span <= 5 {
		return 1
	}
	raw := span / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// SVG is a chart as an inline SVG element, and its natural width in
// pixels: go-chart writes a viewBox and no size, so the page's CSS scales
// it down to the screen, never up beyond Width.
type SVG struct {
	HTML  template.HTML
	Width int
}

func svgOf(c interface {
	Render(chart.RendererProvider, io.Writer) error
}, width int) (SVG, error) {
	var b bytes.Buffer
	if err := c.Render(chart.SVG, &b); err != nil {
		return SVG{}, err
	}
	return SVG{HTML: template.HTML(b.String()), Width: width}, nil
}
