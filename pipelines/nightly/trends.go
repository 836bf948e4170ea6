package nightly

import (
	"context"
	"fmt"
	"reflect"

	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports"
	"github.com/inventory-events/inventory/transforms/summary"
)

func init() {
	register.DoFn4x1[context.Context, []byte, func(int, summary.Part), func(reports.Day), error](&historyFn{})
	register.Emitter1[reports.Day]()
	register.Iter1[reports.Day]()
	beam.RegisterType(reflect.TypeFor[reports.Day]())
}

// historyFn reads the trend window's history from daily_summary: the 27
// report dates before the day (with the day itself, the 28 days of the
// trends). It emits per key the units sold in the last 6 and in all 27 of
// those days and how many of them the key has a row for (one Part per key
// shard, merged with the day's replay), and the whole of each of those
// days for the trend chart. Only those 27 partitions are read.
type historyFn struct {
	Warehouse string
	Date      string // report date, YYYY-MM-DD
	Shards    int
}

// historyBounds returns the first and last report dates historyFn reads,
// and the first of the last 6.
func historyBounds(d civil.Date) (first, last, week civil.Date) {
	return d.AddDays(-(reports.TrendDays - 1)), d.AddDays(-1), d.AddDays(-6)
}

// historyKeysSQL and historyDaysSQL are the same text in DuckDB and in
// GoogleSQL.
const historyKeysSQL = `SELECT sku, location_id,
  SUM(CASE WHEN report_date >= DATE '%[3]s' THEN -sold ELSE 0 END) AS sold_6,
  SUM(-sold) AS sold_27, COUNT(*) AS days
FROM daily_summary
WHERE report_date BETWEEN DATE '%[1]s' AND DATE '%[2]s'
GROUP BY sku, location_id`

const historyDaysSQL = `SELECT report_date, COUNT(*) AS keys, SUM(-sold) AS units_sold,
  SUM(CASE WHEN closing_on_hand < threshold THEN 1 ELSE 0 END) AS keys_below,
  SUM(CASE WHEN closing_on_hand <= 0 THEN 1 ELSE 0 END) AS keys_out
FROM daily_summary
WHERE report_date BETWEEN DATE '%[1]s' AND DATE '%[2]s'
GROUP BY report_date
ORDER BY report_date`

func (f *historyFn) ProcessElement(ctx context.Context, _ []byte, emit func(int, summary.Part), day func(reports.Day)) error {
	d, err := civil.ParseDate(f.Date)
	if err != nil {
		return fmt.Errorf("nightly: history: %w", err)
	}
	first, last, week := historyBounds(d)
	rows, err := warehouse.QueryRows(ctx, f.Warehouse, fmt.Sprintf(historyKeysSQL, first, last, week))
	if err != nil {
		return fmt.Errorf("nightly: history: read daily_summary %s to %s: %w", first, last, err)
	}
	sh := summary.NewSharded(f.Shards)
	for _, r := range rows {
		sku, loc := asString(r["sku"]), asString(r["location_id"])
		it := sh.Part(sku, loc).Item(sku, loc)
		it.HasHistory = true
		it.Sold6, it.Sold27, it.HistoryDays = asInt(r["sold_6"]), asInt(r["sold_27"]), asInt(r["days"])
	}
	sh.Emit(emit)
	rows, err = warehouse.QueryRows(ctx, f.Warehouse, fmt.Sprintf(historyDaysSQL, first, last))
	if err != nil {
		return fmt.Errorf("nightly: history: read daily totals %s to %s: %w", first, last, err)
	}
	for _, r := range rows {
		day(reports.Day{Date: fmt.Sprint(r["report_date"]), Reported: true, Keys: asInt(r["keys"]),
			UnitsSold: asInt(r["units_sold"]), KeysBelow: asInt(r["keys_below"]), KeysOut: asInt(r["keys_out"])})
	}
	return nil
}
