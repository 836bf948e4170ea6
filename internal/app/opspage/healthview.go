package opspage

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"

	"github.com/inventory-events/inventory/internal/app/health"
)

// rateWindow is the span the per-second rates are measured over.
const rateWindow = time.Minute

// healthView is the health panel.
type healthView struct {
	Wired   bool   // a health.Source is configured
	Err     string // it failed
	At      string
	Stalled bool
	// StalledFor and Reason say how long and why, when Stalled.
	StalledFor, Reason string
	Signals            []signalView
	Backlog            int64
	Oldest             string
	LatencyP50         string
	LatencyP99         string
	LastCommit         string
	Nightly            health.NightlyRun
	NightlyFinished    string
}

// signalView is one counter: its total and its rate over rateWindow.
type signalView struct {
	Name  string
	Total int64
	Rate  string
}

func (p *Page) health(ctx context.Context) healthView {
	if p.cfg.Health == nil {
		return healthView{}
	}
	s, err := p.cfg.Health.Snapshot(ctx)
	if err != nil {
		return healthView{Wired: true, Err: err.Error()}
	}
	return viewHealth(s, p.cfg.Health.History())
}

// viewHealth makes the panel of snapshot s, with rates from history (oldest
// first).
func viewHealth(s health.Snapshot, history []health.Snapshot) healthView {
	v := healthView{Wired: true, At: s.At.UTC().Format(timeLayout), Stalled: s.Stalled, Reason: s.Reason,
		Backlog: s.Backlog, Oldest: age(s.OldestUnacked), LatencyP50: age(s.LatencyP50), LatencyP99: age(s.LatencyP99),
		Nightly: s.LastNightly}
	if s.Stalled {
		v.StalledFor = s.StalledFor.Round(time.Second).String()
	}
	if !s.LastCommit.IsZero() {
		v.LastCommit = fmt.Sprintf("%s (%s ago)", s.LastCommit.UTC().Format(timeLayout), s.At.Sub(s.LastCommit).Round(time.Second))
	}
	if !s.LastNightly.Finished.IsZero() {
		v.NightlyFinished = s.LastNightly.Finished.UTC().Format(timeLayout)
	}
	// The oldest snapshot within the window is the rates' start.
	var from *health.Snapshot
	for i := range history {
		h := &history[i]
		if h.At.Before(s.At) && s.At.Sub(h.At) <= rateWindow {
			from = h
			break
		}
	}
	for _, c := range []struct {
		name string
		get  func(*health.Snapshot) int64
	}{
		{"received", func(x *health.Snapshot) int64 { return x.Received }},
		{"applied", func(x *health.Snapshot) int64 { return x.Applied }},
		{"duplicate", func(x *health.Snapshot) int64 { return x.Duplicate }},
		{"superseded", func(x *health.Snapshot) int64 { return x.Superseded }},
		{"dead letters", func(x *health.Snapshot) int64 { return x.DeadLettered }},
		{"alerts", func(x *health.Snapshot) int64 { return x.Alerts }},
	} {
		sv := signalView{Name: c.name, Total: c.get(&s), Rate: "-"}
		if from != nil {
			sv.Rate = fmt.Sprintf("%.1f/s", float64(c.get(&s)-c.get(from))/s.At.Sub(from.At).Seconds())
		}
		v.Signals = append(v.Signals, sv)
	}
	return v
}

// age is d for a person: "-" for none.
func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

var (
	colorReceived = drawing.ColorFromHex("1565c0")
	colorApplied  = drawing.ColorFromHex("2e7d32")
	colorBacklog  = drawing.ColorFromHex("ef6c00")
)

// serveChart draws the last minutes of the health history: received and
// applied per second, and the backlog on the right axis.
func (p *Page) serveChart(w http.ResponseWriter, r *http.Request) {
	var hist []health.Snapshot
	if p.cfg.Health != nil {
		hist = p.cfg.Health.History()
	}
	svg, err := historyChart(hist)
	if err != nil {
		p.cfg.Logger.Warn("operations page: chart", "err", err)
		http.Error(w, "chart: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(svg)
}

// historyChart is the SVG chart of hist (oldest first); with fewer than
// two snapshots, a frame that says so.
func historyChart(hist []health.Snapshot) ([]byte, error) {
	const width, height = 640, 200
	if len(hist) < 2 {
		return fmt.Appendf(nil, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %[1]d %[2]d">`+
			`<rect x="0.5" y="0.5" width="%d" height="%d" fill="none" stroke="#cfd8dc"/>`+
			`<text x="50%%" y="50%%" text-anchor="middle" font-family="sans-serif" font-size="14" fill="#546e7a">collecting the last minutes…</text></svg>`,
			width, height, width-1, height-1), nil
	}
	var xs []time.Time
	var recv, appl, back []float64
	for i := 1; i < len(hist); i++ {
		a, b := &hist[i-1], &hist[i]
		dt := b.At.Sub(a.At).Seconds()
		if dt <= 0 {
			continue
		}
		xs = append(xs, b.At)
		recv = append(recv, float64(b.Received-a.Received)/dt)
		appl = append(appl, float64(b.Applied-a.Applied)/dt)
		back = append(back, float64(b.Backlog))
	}
	if len(xs) < 2 {
		return historyChart(nil)
	}
	line := func(c drawing.Color, dash bool) chart.Style {
		st := chart.Style{StrokeColor: c, StrokeWidth: 2}
		if dash {
			st.StrokeDashArray = []float64{5, 3}
		}
		return st
	}
	g := chart.Chart{
		Width: width, Height: height,
		Background: chart.Style{Padding: chart.Box{Top: 12, Left: 8, Right: 8, Bottom: 8}},
		XAxis:      chart.XAxis{ValueFormatter: chart.TimeValueFormatterWithFormat("15:04:05"), Style: chart.Style{FontSize: 9}},
		// The legend is the page's, under the image.
		YAxis: chart.YAxis{Style: chart.Style{FontSize: 9}, Range: &chart.ContinuousRange{Min: 0, Max: max(1, maxOf(back))}},
		YAxisSecondary: chart.YAxis{Style: chart.Style{FontSize: 9},
			Range: &chart.ContinuousRange{Min: 0, Max: max(1, maxOf(recv), maxOf(appl))}},
		Series: []chart.Series{
			chart.TimeSeries{Name: "received/s", XValues: xs, YValues: recv, YAxis: chart.YAxisSecondary, Style: line(colorReceived, false)},
			chart.TimeSeries{Name: "applied/s", XValues: xs, YValues: appl, YAxis: chart.YAxisSecondary, Style: line(colorApplied, true)},
			chart.TimeSeries{Name: "backlog", XValues: xs, YValues: back, Style: line(colorBacklog, false)},
		},
	}
	var buf bytes.Buffer
	if err := g.Render(chart.SVG, &buf); err != nil {
		return nil, fmt.Errorf("opspage: render chart: %w", err)
	}
	return buf.Bytes(), nil
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
