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
	// Rows is how many adjustments the run reads from the warehouse (those
	// before the end of the day), and DayRows how many are of the day; -1
	// when the run reads a CSV.
	Rows, DayRows int64
	// InputBytes is the size of the local CSV input, or -1.
	InputBytes int64
	// Opening says where the opening stock comes from.
	Opening string
}

// Preflight checks, before anything is written, what would otherwise make
// the run fail late: the date and time zone, the local files named, and
// that the warehouse is there and answers. Every error names the value at
// fault. It refuses nothing that the data makes normal: a first night with
// no earlier report and no --snapshot opens from the stream's starting
// stock, and a day without adjustments is reported with no movement.
func Preflight(ctx context.Context, cfg Config) (Plan, error) {
	cfg = cfg.withDefaults()
	plan := Plan{Rows: -1, DayRows: -1, InputBytes: -1}
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
	if cfg.Snapshot != "" {
		plan.Opening = "the snapshot, and the adjustments since"
	} else {
		plan.Opening = "the stream's starting stock (stock_levels), and the adjustments since"
	}
	if cfg.Input == "" {
		// A day without adjustments is a day like any other (a closed
		// store, a holiday): its report shows no movement. The counts are
		// for the progress line, and they check that the warehouse answers.
		rows, err := warehouse.QueryRows(ctx, cfg.Warehouse, fmt.Sprintf(
			"SELECT count(*) AS n, COUNT(CASE WHEN event_time >= %s THEN 1 END) AS day_rows FROM adjustments WHERE event_time < %s",
			warehouse.TimestampSQL(cfg.Warehouse, start.UnixMicro()), warehouse.TimestampSQL(cfg.Warehouse, end.UnixMicro())))
		if err != nil {
			return plan, fmt.Errorf("nightly: count the adjustments of %s in %s: %w", cfg.Date, cfg.Warehouse, err)
		}
		plan.Rows, plan.DayRows = 0, 0
		if len(rows) == 1 {
			plan.Rows, plan.DayRows = warehouse.AsInt(rows[0]["n"]), warehouse.AsInt(rows[0]["day_rows"])
		}
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
