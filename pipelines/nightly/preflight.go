package nightly

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// Plan is what Preflight found: what the run will read.
type Plan struct {
	// Rows is how many adjustments the warehouse holds for the day, or -1
	// when the run reads a CSV.
	Rows int64
	// InputBytes is the size of the local CSV input, or -1.
	InputBytes int64
	// Opening says where the opening stock comes from.
	Opening string
}

// Preflight checks, before anything is written, what would otherwise make
// the run fail late or report nonsense: the date and time zone, the local
// files named, that there is an opening stock (the previous day's
// daily_summary or a snapshot), and that the day has adjustments. Every
// error names the value at fault.
func Preflight(ctx context.Context, cfg Config) (Plan, error) {
	cfg = cfg.withDefaults()
	plan := Plan{Rows: -1, InputBytes: -1}
	start, end, err := cfg.Window()
	if err != nil {
		return plan, err
	}
	for _, f := range []struct{ flag, path string }{{"snapshot", cfg.Snapshot}, {"thresholds", cfg.Thresholds}} {
		if err := localFileExists(f.flag, f.path); err != nil {
			return plan, err
		}
	}
	if cfg.Input != "" && !isRemote(cfg.Input) {
		files, err := filepath.Glob(cfg.Input)
		if err != nil {
			return plan, fmt.Errorf("nightly: --input %q: %w", cfg.Input, err)
		}
		if len(files) == 0 {
			return plan, fmt.Errorf("nightly: --input %q: no such file", cfg.Input)
		}
		plan.InputBytes = 0
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				plan.InputBytes += fi.Size()
			}
		}
	}
	if !warehouse.IsBigQuery(cfg.Warehouse) && !isRemote(cfg.Warehouse) {
		if _, err := os.Stat(cfg.Warehouse); err != nil && (cfg.Input == "" || cfg.Snapshot == "") {
			return plan, fmt.Errorf("nightly: warehouse %q: %w (run `inventory setup --warehouse %s`, or pass --warehouse)",
				cfg.Warehouse, unwrapPath(err), cfg.Warehouse)
		}
	}
	prev := cfg.Date.AddDays(-1)
	if cfg.Snapshot != "" {
		plan.Opening = "the snapshot"
	} else {
		n, err := count(ctx, cfg.Warehouse, fmt.Sprintf(
			"SELECT count(*) AS n FROM daily_summary WHERE report_date = DATE '%s'", prev))
		if err != nil {
			return plan, fmt.Errorf("nightly: opening stock: read daily_summary of %s in %s: %w", prev, cfg.Warehouse, err)
		}
		if n == 0 {
			return plan, fmt.Errorf("nightly: no opening stock for %s: %s has no daily_summary for %s and no --snapshot was given; "+
				"pass --snapshot FILE (the stock before %s), or run the nightly job for %s first", cfg.Date, cfg.Warehouse, prev, cfg.Date, prev)
		}
		plan.Opening = fmt.Sprintf("daily_summary of %s (%d keys)", prev, n)
	}
	if cfg.Input == "" {
		n, err := count(ctx, cfg.Warehouse, fmt.Sprintf(
			"SELECT count(*) AS n FROM adjustments WHERE event_time >= %s AND event_time < %s",
			warehouse.TimestampSQL(cfg.Warehouse, start.UnixMicro()), warehouse.TimestampSQL(cfg.Warehouse, end.UnixMicro())))
		if err != nil {
			return plan, fmt.Errorf("nightly: count the adjustments of %s in %s: %w", cfg.Date, cfg.Warehouse, err)
		}
		if n == 0 {
			return plan, fmt.Errorf("nightly: %s has no adjustments on %s (%s, %s to %s): nothing to report; "+
				"is --warehouse right, or did the stream run?", cfg.Warehouse, cfg.Date, cfg.TimeZone,
				start.Format("2006-01-02 15:04 MST"), end.Format("2006-01-02 15:04 MST"))
		}
		plan.Rows = n
	}
	return plan, nil
}

func count(ctx context.Context, wh, sql string) (int64, error) {
	rows, err := warehouse.QueryRows(ctx, wh, sql)
	if err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return warehouse.AsInt(rows[0]["n"]), nil
}

func isRemote(uri string) bool { return strings.Contains(uri, "://") }

func localFileExists(flag, path string) error {
	if path == "" || isRemote(path) {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("nightly: --%s %q: %w", flag, path, unwrapPath(err))
	}
	return nil
}

// unwrapPath drops the *fs.PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
