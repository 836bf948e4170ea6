package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"

	_ "github.com/inventory-events/inventory/loaders/warehouse/local" // the soak's local warehouse
)

// sampleRow is one line of the CSV.
type sampleRow struct {
	elapsed    time.Duration
	rssMiB     float64
	goroutines int
	published  int64
	stored     int64
	publishing bool // taken while publishing (the summary compares those)
}

// summarize prints RSS after warm-up against the last sample taken while
// publishing, and the goroutines of the first and that sample.
func summarize(w io.Writer, samples []sampleRow) {
	var pub []sampleRow
	for _, s := range samples {
		if s.publishing {
			pub = append(pub, s)
		}
	}
	if len(pub) < 2 {
		fmt.Fprintln(w, "too few samples for a summary")
		return
	}
	last := pub[len(pub)-1]
	// The baseline is minute 5; a run shorter than 10 minutes uses its middle.
	at := min(baselineAt, last.elapsed/2)
	base := pub[0]
	for _, s := range pub {
		if s.elapsed >= at {
			base = s
			break
		}
	}
	peak := 0.0
	for _, s := range samples {
		peak = max(peak, s.rssMiB)
	}
	fmt.Fprintf(w, "RSS %.1f MiB at %s, %.1f MiB at %s (%+.1f%%), peak %.1f MiB\n", base.rssMiB, clock(base.elapsed),
		last.rssMiB, clock(last.elapsed), 100*(last.rssMiB-base.rssMiB)/base.rssMiB, peak)
	fmt.Fprintf(w, "goroutines %d at %s, %d at %s (after warm-up at %s: %d)\n", pub[0].goroutines, clock(pub[0].elapsed),
		last.goroutines, clock(last.elapsed), clock(base.elapsed), base.goroutines)
}

func clock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// rssMiB reads VmRSS of pid.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// goroutines reads the total of the child's goroutine profile.
func goroutines(base string) (int, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + "goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile starts with %q", line)
	}
	return strconv.Atoi(n)
}

// scalar runs a one-value query on the warehouse.
func scalar(ctx context.Context, wh, sql string) (int64, error) {
	rows, err := warehouse.QueryRows(ctx, wh, sql)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("%s: %d rows", sql, len(rows))
	}
	for _, v := range rows[0] {
		if n, ok := v.(int64); ok {
			return n, nil
		}
		return 0, fmt.Errorf("%s: %T", sql, v)
	}
	return 0, nil
}
