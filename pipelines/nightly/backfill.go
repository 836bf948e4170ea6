package nightly

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// maxRangeDays bounds a backfill: a longer range is most likely a typo.
const maxRangeDays = 366

// beforeDataError is a report date before the first day with data in the
// warehouse: its report would be empty, and every later day would open from
// it.
type beforeDataError struct {
	Date     civil.Date
	Earliest civil.Date
	// Empty is true when the warehouse holds no data at all.
	Empty bool
}

func (e *beforeDataError) Error() string {
	if e.Empty {
		return fmt.Sprintf("nightly: report date %s: the warehouse has no adjustments and no daily_summary yet", e.Date)
	}
	return fmt.Sprintf("nightly: report date %s is before the first day with data in the warehouse (%s)", e.Date, e.Earliest)
}

// EarliestDate returns the first report date the warehouse at uri has data
// for, in time zone tz (warehouse.FirstDataDate).
func EarliestDate(ctx context.Context, uri, tz string) (civil.Date, bool, error) {
	return warehouse.FirstDataDate(ctx, uri, tz)
}

// checkRange validates a backfill range: from <= to, at most maxRangeDays
// days, and, when the job reads the warehouse (no Input), not starting
// before the warehouse's first day with data (a *beforeDataError).
func checkRange(ctx context.Context, cfg Config, from, to civil.Date) error {
	cfg = cfg.withDefaults()
	switch {
	case !from.IsValid() || !to.IsValid():
		return fmt.Errorf("nightly: range %s to %s: not valid dates", from, to)
	case to.Before(from):
		return fmt.Errorf("nightly: range %s to %s: the end is before the start", from, to)
	case to.DaysSince(from)+1 > maxRangeDays:
		return fmt.Errorf("nightly: range %s to %s is %d days: at most %d", from, to, to.DaysSince(from)+1, maxRangeDays)
	}
	if cfg.Input != "" {
		return nil // the CSV is the data
	}
	first, ok, err := EarliestDate(ctx, cfg.Warehouse, cfg.TimeZone)
	if err != nil {
		return err
	}
	if !ok || from.Before(first) {
		return &beforeDataError{Date: from, Earliest: first, Empty: !ok}
	}
	return nil
}

// RunRange runs the job for every date from from to to, in order, each as
// Run does (a rerun of a date replaces it), so that each day opens from the
// closing stock and trends of the day before. It stops at the first failure.
// done, if not nil, is called after each date.
func RunRange(ctx context.Context, cfg Config, from, to civil.Date, done func(RunResult)) ([]RunResult, error) {
	if err := checkRange(ctx, cfg, from, to); err != nil {
		return nil, err
	}
	var out []RunResult
	for d := from; !d.After(to); d = d.AddDays(1) {
		c := cfg
		c.Date, c.StartedAt = d, time.Time{}
		if cfg.RunID != "" {
			c.RunID = cfg.RunID + "-" + d.String()
		}
		res, err := Run(ctx, c)
		if err != nil {
			return out, fmt.Errorf("nightly: range %s to %s stopped at %s: %w", from, to, d, err)
		}
		out = append(out, res)
		if done != nil {
			done(res)
		}
	}
	return out, nil
}
