package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/civil"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/pipelines/nightly"
	"github.com/inventory-events/inventory/transforms/summary"
)

// parseDate parses --date, saying what is wrong with a bad one.
func parseDate(s string) (civil.Date, error) {
	d, err := civil.ParseDate(s)
	if err != nil {
		if _, terr := time.Parse(time.DateOnly, s); terr != nil && strings.Contains(terr.Error(), "out of range") {
			return d, fmt.Errorf("--date %q is not a calendar date (%v)", s, terr)
		}
		return d, fmt.Errorf("--date %q: want YYYY-MM-DD, e.g. %s", s, clock.Now().AddDate(0, 0, -1).Format(time.DateOnly))
	}
	return d, nil
}

// runLocal runs the job in this process on Prism: progress on line (a
// terminal, or nil), then the report's path and a one-line summary on out.
func runLocal(ctx context.Context, cfg nightly.Config, out io.Writer, line *console.Line) error {
	plan, err := nightly.Preflight(ctx, cfg)
	if err != nil {
		return err
	}
	t0 := time.Now()
	meter := summary.NewMeter()
	defer meter.Close()
	cfg.Meter = meter.ID()
	label := "nightly " + cfg.Date.String()
	stop := line.Tick(250*time.Millisecond, func() string {
		el := time.Since(t0)
		switch {
		case plan.InputBytes > 0:
			return console.Bar(label, meter.Bytes.Load(), plan.InputBytes, "bytes read", el, line.Width())
		case plan.Rows > 0:
			return console.Bar(label, meter.Rows.Load(), plan.Rows, "rows read", el, line.Width())
		}
		return console.Bar(label, 0, 0, "running", el, line.Width())
	})
	res, err := nightly.Run(ctx, cfg)
	stop()
	if err != nil {
		return err
	}
	report := res.OutputURI + "/index.html"
	if !strings.Contains(report, "://") {
		if abs, err := filepath.Abs(report); err == nil {
			report = abs
		}
	}
	fmt.Fprintf(out, "report: %s\n", report)
	n := console.Thousands
	fmt.Fprintf(out, "%s: %s keys, %s adjustments (%s invalid), %s mismatches with the stream; opening: %s; %s\n",
		res.Date, n(res.Keys), n(res.Events), n(res.Invalid), n(res.Mismatch), res.Opening, res.Duration.Round(100*time.Millisecond))
	return nil
}
