package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// Charts are drawn by go-chart as SVG and inlined in the page, so the page
// needs no script and no network.

var (
	colorIn    = drawing.ColorFromHex("2e7d32")
	colorOut   = drawing.ColorFromHex("c62828")
	colorNeut  = drawing.ColorFromHex("546e7a")
	colorLine  = drawing.ColorFromHex("1565c0")
	colorLimit = drawing.ColorFromHex("ef6c00")
)

// reasonChart draws units moved per reason as bars of absolute units,
// green for stock in, red for stock out, grey for net corrections.
func reasonChart(ms []Movement) (template.HTML, error) {
	var bars []chart.Value
	maxV := 1.0
	for _, m := range ms {
		v := math.Abs(float64(m.Units))
		maxV = max(maxV, v)
		c := colorIn
		switch {
		case m.Reason == "ADJUSTED" || m.Reason == "COUNTED":
			c = colorNeut
		case m.Units < 0:
			c = colorOut
		}
		bars = append(bars, chart.Value{Label: shortReason(m.Reason), Value: v,
			Style: chart.Style{FillColor: c, StrokeColor: c, StrokeWidth: 1}})
	}
	bc := chart.BarChart{
		Width: 760, Height: 340, BarWidth: 56, BarSpacing: 26,
		Background: chart.Style{Padding: chart.Box{Top: 24, Left: 10, Right: 10, Bottom: 36}},
		XAxis:      chart.Style{FontSize: 9},
		YAxis: chart.YAxis{
			Range:          &chart.ContinuousRange{Min: 0, Max: maxV * 1.1},
			ValueFormatter: func(v interface{}) string { return groupDigits(int64(v.(float64))) },
		},
		Bars: bars,
	}
	return svgOf(bc)
}

func shortReason(r string) string {
	switch r {
	case "TRANSFER_IN":
		return "XFER IN"
	case "TRANSFER_OUT":
		return "XFER OUT"
	}
	return r
}

// stockChartSVG draws a key's on-hand over the day as a step line with its
// threshold.
func stockChartSVG(s Series, start, end time.Time, tz string) (template.HTML, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	var xs []time.Time
	var ys []float64
	lo, hi := float64(s.Threshold), float64(s.Threshold)
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
	lo = min(lo, 0)
	pad := max(1, (hi-lo)*0.1)
	c := chart.Chart{
		Width: 460, Height: 220,
		Background: chart.Style{Padding: chart.Box{Top: 16, Left: 8, Right: 16, Bottom: 8}},
		XAxis: chart.XAxis{
			Range:          &chart.ContinuousRange{Min: chart.TimeToFloat64(start.In(loc)), Max: chart.TimeToFloat64(end.In(loc))},
			ValueFormatter: func(v interface{}) string { return chart.TimeFromFloat64(v.(float64)).In(loc).Format("15:04") },
			Ticks:          hourTicks(start.In(loc), end.In(loc)),
		},
		YAxis: chart.YAxis{
			Range:          &chart.ContinuousRange{Min: lo - pad, Max: hi + pad},
			ValueFormatter: func(v interface{}) string { return fmt.Sprintf("%.0f", v.(float64)) },
		},
		Series: []chart.Series{
			chart.TimeSeries{Name: "on hand", XValues: xs, YValues: ys,
				Style: chart.Style{StrokeColor: colorLine, StrokeWidth: 2, FillColor: colorLine.WithAlpha(32)}},
			chart.TimeSeries{Name: "threshold", XValues: []time.Time{start.In(loc), end.In(loc)},
				YValues: []float64{float64(s.Threshold), float64(s.Threshold)},
				Style:   chart.Style{StrokeColor: colorLimit, StrokeWidth: 1.5, StrokeDashArray: []float64{5, 4}}},
			chart.TimeSeries{Name: "zero", XValues: []time.Time{start.In(loc), end.In(loc)}, YValues: []float64{0, 0},
				Style: chart.Style{StrokeColor: colorOut, StrokeWidth: 1}},
		},
	}
	return svgOf(c)
}

func hourTicks(start, end time.Time) []chart.Tick {
	var ticks []chart.Tick
	for t := start; !t.After(end); t = t.Add(3 * time.Hour) {
		ticks = append(ticks, chart.Tick{Value: chart.TimeToFloat64(t), Label: t.Format("15:04")})
	}
	return ticks
}

// svgOf renders a chart as an inline SVG element (go-chart writes a viewBox
// and no size, so the page's CSS sizes it).
func svgOf(c interface {
	Render(chart.RendererProvider, io.Writer) error
}) (template.HTML, error) {
	var b bytes.Buffer
	if err := c.Render(chart.SVG, &b); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}
