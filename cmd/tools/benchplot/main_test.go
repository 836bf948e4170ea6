package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
)

// TestRender renders both plots from small CSVs in the benchmarks' formats
// and checks the SVGs carry their titles, legends and log-axis labels.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	stream := filepath.Join(dir, "stream.csv")
	soak := filepath.Join(dir, "soak.csv")
	write(t, stream, `keys,events,job_events_per_s,baseline_events_per_s,ratio,job_peak_rss_mib,baseline_peak_rss_mib
1000,1000,50,100,0.5,10,5
100000,2000,40,90,0.44,20,6
1000,1000,60,100,0.6,11,5
`)
	write(t, soak, `elapsed_s,rss_mib,goroutines,published,stored
0.0,100.0,150,0,0
10.0,120.5,160,100,90
20.0,121.0,160,200,200
`)
	for _, c := range []struct {
		in, out string
		build   func([]record) ([]*plot.Plot, error)
		want    []string
	}{
		{stream, "stream-keys.svg", streamKeys, []string{"Streaming job throughput by key count", "Peak RSS by key count",
			"job on Prism", "plain Go consumer (baseline)", "1k", "100k", "keys (log scale)"}},
		{soak, "soak-rss.svg", soakRSS, []string{"RSS (MiB)", "goroutines", "minutes since the load started"}},
	} {
		out := filepath.Join(dir, "img", c.out)
		if err := render(c.in, out, c.build); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		svg := string(b)
		if !strings.HasPrefix(strings.TrimSpace(svg), "<?xml") || !strings.Contains(svg, "<svg") {
			t.Errorf("%s is not an SVG: %.80q", c.out, svg)
		}
		for _, w := range c.want {
			if !strings.Contains(svg, ">"+w+"<") {
				t.Errorf("%s has no text %q", c.out, w)
			}
		}
	}
}

// TestStreamKeysLastRunWins: of two runs with the same key count, the later
// line is plotted.
func TestStreamKeysLastRunWins(t *testing.T) {
	recs := []record{
		{"keys": 1000, "job_events_per_s": 50, "baseline_events_per_s": 100, "job_peak_rss_mib": 10, "baseline_peak_rss_mib": 5},
		{"keys": 10, "job_events_per_s": 70, "baseline_events_per_s": 100, "job_peak_rss_mib": 10, "baseline_peak_rss_mib": 5},
		{"keys": 1000, "job_events_per_s": 60, "baseline_events_per_s": 100, "job_peak_rss_mib": 11, "baseline_peak_rss_mib": 5},
	}
	got, err := lastByKeys(recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["keys"] != 10 || got[1]["keys"] != 1000 || got[1]["job_events_per_s"] != 60 {
		t.Errorf("lastByKeys = %v, want keys 10 then 1000 with the later run's 60 events/s", got)
	}
	ps, err := streamKeys(recs)
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].X.Min != 5 || ps[0].X.Max != 2000 {
		t.Errorf("x range [%v, %v], want [5, 2000]", ps[0].X.Min, ps[0].X.Max)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.csv")
	write(t, missing, "keys,events\n1000,5\n")
	if err := render(missing, filepath.Join(dir, "x.svg"), streamKeys); err == nil || !strings.Contains(err.Error(), "job_events_per_s") {
		t.Errorf("a CSV without job_events_per_s: %v", err)
	}
	bad := filepath.Join(dir, "bad.csv")
	write(t, bad, "elapsed_s,rss_mib,goroutines\n10,lots,3\n")
	if err := render(bad, filepath.Join(dir, "y.svg"), soakRSS); err == nil || !strings.Contains(err.Error(), "rss_mib") {
		t.Errorf("a CSV with a word for a number: %v", err)
	}
	zero := filepath.Join(dir, "zero.csv")
	write(t, zero, "keys,events,job_events_per_s,baseline_events_per_s,ratio,job_peak_rss_mib,baseline_peak_rss_mib\n0,1,1,1,1,1,1\n")
	if err := render(zero, filepath.Join(dir, "z.svg"), streamKeys); err == nil || !strings.Contains(err.Error(), "log axis") {
		t.Errorf("0 keys on a log axis: %v", err)
	}
}

func TestTickLabels(t *testing.T) {
	for v, want := range map[float64]string{1000: "1k", 1e5: "100k", 1e6: "1M", 10: "10"} {
		if got := keyLabel(v); got != want {
			t.Errorf("keyLabel(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{90000: "90,000", 1000: "1,000", 250: "250", 2.5: "2.5", -1500: "-1,500"} {
		if got := numLabel(v); got != want {
			t.Errorf("numLabel(%v) = %q, want %q", v, got, want)
		}
	}
	var labels []string
	for _, tk := range (niceTicks{}).Ticks(0, 2621) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "0 500 1,000 1,500 2,000 2,500" {
		t.Errorf("ticks of [0, 2621]: %s", got)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
