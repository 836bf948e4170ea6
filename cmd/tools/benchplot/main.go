// Command benchplot renders the benchmark plots of docs/benchmarks.md as SVG
// (gonum.org/v1/plot), from the CSV files the benchmarks write:
//
//	go run ./cmd/tools/benchplot --stream stream-results.csv --soak soak.csv --outdir docs/img
//
// --stream is streambench's --results file, one line per run:
//
//	keys,events,job_events_per_s,baseline_events_per_s,ratio,job_peak_rss_mib,baseline_peak_rss_mib
//
// and gives stream-keys.svg: throughput (job and plain consumer) and peak RSS
// against the key count, on a log axis; when several runs have the same key
// count, the last line wins. --soak is cmd/tools/soak's --out file:
//
//	elapsed_s,rss_mib,goroutines,published,stored
//
// and gives soak-rss.svg: the child's RSS and goroutines over the minutes.
// Either input may be left out; its plot is then not rendered.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

var (
	streamCSV = flag.String("stream", "", "streambench --results CSV (empty: no stream-keys.svg)")
	soakCSV   = flag.String("soak", "", "soak --out CSV (empty: no soak-rss.svg)")
	outDir    = flag.String("outdir", "docs/img", "where the SVG files go")
)

func main() {
	flag.Parse()
	if *streamCSV == "" && *soakCSV == "" {
		log.Fatal("benchplot: give --stream, --soak or both")
	}
	if *streamCSV != "" {
		if err := render(*streamCSV, filepath.Join(*outDir, "stream-keys.svg"), streamKeys); err != nil {
			log.Fatal(err)
		}
	}
	if *soakCSV != "" {
		if err := render(*soakCSV, filepath.Join(*outDir, "soak-rss.svg"), soakRSS); err != nil {
			log.Fatal(err)
		}
	}
}

// render reads the CSV in, builds its plots with build (one column of
// panels sharing the x axis) and writes them as one SVG to out.
func render(in, out string, build func([]record) ([]*plot.Plot, error)) error {
	recs, err := readCSV(in)
	if err != nil {
		return err
	}
	plots, err := build(recs)
	if err != nil {
		return fmt.Errorf("benchplot: %s: %w", in, err)
	}
	const w, h = 7 * vg.Inch, 6 * vg.Inch
	c := vgsvg.New(w, h)
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(10), PadY: vg.Points(14)}
	canvases := plot.Align(rows, tiles, draw.New(c))
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("benchplot: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("benchplot: %w", err)
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("benchplot: write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("benchplot: write %s: %w", out, err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s from %s (%d rows)\n", out, in, len(recs))
	return nil
}

// record is one CSV line by column name.
type record map[string]float64

// readCSV reads a CSV with a header of column names and numbers below.
func readCSV(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("benchplot: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("benchplot: %s: header: %w", path, err)
	}
	var recs []record
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("benchplot: %s: %w", path, err)
		}
		rec := record{}
		for i, v := range row {
			if v == "" || v == "-" {
				rec[head[i]] = math.NaN()
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("benchplot: %s line %d column %s: %w", path, len(recs)+2, head[i], err)
			}
			rec[head[i]] = x
		}
		recs = append(recs, rec)
	}
}

// need checks that every record has the columns.
func need(recs []record, cols ...string) error {
	if len(recs) == 0 {
		return errors.New("no rows")
	}
	for _, c := range cols {
		for i, r := range recs {
			if _, ok := r[c]; !ok {
				return fmt.Errorf("row %d has no column %q", i+1, c)
			}
		}
	}
	return nil
}

// series is the x, y points of one line, NaN ys left out.
func series(recs []record, x, y string) plotter.XYs {
	var xys plotter.XYs
	for _, r := range recs {
		if !math.IsNaN(r[y]) {
			xys = append(xys, plotter.XY{X: r[x], Y: r[y]})
		}
	}
	return xys
}

var (
	blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	green  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// addLine adds a line in c, dashed if asked, with a dot per point if
// asked (few points), and names it in p's legend.
func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, dashed, dots bool) error {
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	p.Add(l)
	if !dots {
		p.Legend.Add(name, l)
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	s.Color, s.Shape, s.Radius = c, draw.CircleGlyph{}, vg.Points(2.5)
	p.Add(s)
	p.Legend.Add(name, l, s)
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.TextStyle.Font.Size, p.Y.Label.TextStyle.Font.Size = vg.Points(11), vg.Points(11)
	p.X.Tick.Label.Font.Size, p.Y.Tick.Label.Font.Size = vg.Points(10), vg.Points(10)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.Top, p.Legend.Left = true, false
	p.Add(plotter.NewGrid())
	p.Y.Min = 0
	p.Y.Tick.Marker = niceTicks{}
	return p
}

// headroom raises p's y range a third above its data, for the legend.
func headroom(ps ...*plot.Plot) {
	for _, p := range ps {
		p.Y.Max *= 1.35
	}
}

// niceTicks marks about five round values (1, 2 or 5 times a power of ten)
// labelled as integers with thousands separators when they are.
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return []plot.Tick{{Value: lo, Label: numLabel(lo)}}
	}
	pow := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	step := pow
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * pow; (hi-lo)/step <= 7 {
			break
		}
	}
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: numLabel(v)})
		if minor := v + step/2; minor < hi {
			ts = append(ts, plot.Tick{Value: minor})
		}
	}
	return ts
}

// numLabel prints v without a needless fraction, with thousands separators.
func numLabel(v float64) string {
	if v != math.Trunc(v) {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	s := strconv.FormatInt(int64(math.Abs(v)), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if v < 0 {
		s = "-" + s
	}
	return s
}

// streamKeys: throughput and peak RSS against key count (log x).
func streamKeys(recs []record) ([]*plot.Plot, error) {
	if err := need(recs, "keys", "job_events_per_s", "baseline_events_per_s", "job_peak_rss_mib", "baseline_peak_rss_mib"); err != nil {
		return nil, err
	}
	recs, err := lastByKeys(recs)
	if err != nil {
		return nil, err
	}
	const xl = "keys (log scale)"
	tp := newPlot("Streaming job throughput by key count", xl, "events/s")
	rss := newPlot("Peak RSS by key count", xl, "MiB")
	for _, p := range []*plot.Plot{tp, rss} {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, keyTicks{}
	}
	if err := errors.Join(
		addLine(tp, "job on Prism", series(recs, "keys", "job_events_per_s"), blue, false, true),
		addLine(tp, "plain Go consumer (baseline)", series(recs, "keys", "baseline_events_per_s"), orange, true, true),
		addLine(rss, "job on Prism", series(recs, "keys", "job_peak_rss_mib"), blue, false, true),
		addLine(rss, "plain Go consumer (baseline)", series(recs, "keys", "baseline_peak_rss_mib"), orange, true, true),
	); err != nil {
		return nil, err
	}
	headroom(tp, rss)
	// A log axis needs some room either side of a single key count.
	for _, p := range []*plot.Plot{tp, rss} {
		p.X.Min, p.X.Max = recs[0]["keys"]/2, recs[len(recs)-1]["keys"]*2
	}
	return []*plot.Plot{tp, rss}, nil
}

// lastByKeys returns the last record of each key count, in key order.
func lastByKeys(recs []record) ([]record, error) {
	last := map[float64]record{}
	for _, r := range recs {
		if r["keys"] <= 0 {
			return nil, fmt.Errorf("keys %v: a log axis needs positive key counts", r["keys"])
		}
		last[r["keys"]] = r
	}
	var out []record
	for _, k := range slices.Sorted(maps.Keys(last)) {
		out = append(out, last[k])
	}
	return out, nil
}

// keyTicks marks the powers of ten as 1k, 10k, 100k, 1M ...
type keyTicks struct{}

func (keyTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		v := math.Pow(10, e)
		if v >= lo && v <= hi {
			ts = append(ts, plot.Tick{Value: v, Label: keyLabel(v)})
		}
		for m := 2.0; m < 10; m++ {
			if mv := m * v; mv >= lo && mv <= hi {
				ts = append(ts, plot.Tick{Value: mv}) // minor
			}
		}
	}
	return ts
}

func keyLabel(v float64) string {
	switch {
	case v >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', -1, 64) + "G"
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// soakRSS: RSS and goroutines of `inventory up` over the soak's minutes.
func soakRSS(recs []record) ([]*plot.Plot, error) {
	if err := need(recs, "elapsed_s", "rss_mib", "goroutines"); err != nil {
		return nil, err
	}
	for _, r := range recs {
		r["elapsed_min"] = r["elapsed_s"] / 60
	}
	const xl = "minutes since the load started"
	rss := newPlot("inventory up under steady load: memory", xl, "RSS (MiB)")
	gor := newPlot("inventory up under steady load: goroutines", xl, "goroutines")
	for _, p := range []*plot.Plot{rss, gor} {
		p.Legend.Top = false
		p.X.Min = 0
	}
	if err := errors.Join(
		addLine(rss, "RSS (VmRSS)", series(recs, "elapsed_min", "rss_mib"), blue, false, false),
		addLine(gor, "goroutines", series(recs, "elapsed_min", "goroutines"), green, false, false),
	); err != nil {
		return nil, err
	}
	return []*plot.Plot{rss, gor}, nil
}
