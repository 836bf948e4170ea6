package warehouse

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"
)

// FirstDataDate returns the first report date the warehouse at uri has data
// for, in time zone tz: the earlier of its first daily_summary date and the
// day of its first adjustment. ok is false when it has neither.
func FirstDataDate(ctx context.Context, uri, tz string) (d civil.Date, ok bool, err error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return civil.Date{}, false, fmt.Errorf("warehouse: time zone: %w", err)
	}
	rows, err := QueryRows(ctx, uri,
		"SELECT (SELECT MIN(report_date) FROM daily_summary) AS first_summary, (SELECT MIN(event_time) FROM adjustments) AS first_event")
	if err != nil {
		return civil.Date{}, false, fmt.Errorf("warehouse: earliest data in %s: %w", uri, err)
	}
	if len(rows) == 1 {
		if s, isDate := rows[0]["first_summary"].(civil.Date); isDate {
			d, ok = s, true
		}
		if t, isTime := rows[0]["first_event"].(time.Time); isTime {
			if e := civil.DateOf(t.In(loc)); !ok || e.Before(d) {
				d, ok = e, true
			}
		}
	}
	return d, ok, nil
}
