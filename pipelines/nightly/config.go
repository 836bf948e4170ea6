package nightly

import (
	"fmt"
	"time"

	"cloud.google.com/go/civil"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports"
	"github.com/inventory-events/inventory/transforms/summary"
)

// Config is one run of the nightly job.
type Config struct {
	// Date is the report date in TimeZone.
	Date civil.Date
	// Meter is the ID of a summary.Meter in this process that counts what
	// the job reads, for a progress line ("": none; local runs only).
	Meter string
	// TimeZone is an IANA zone name; empty means UTC.
	TimeZone string
	// Input is a CSV file or glob of adjustments (local or gs://). Empty
	// reads the day's adjustments from Warehouse.
	Input string
	// Warehouse is the local warehouse directory or bq://PROJECT.DATASET.
	Warehouse string
	// Snapshot is the inventory_state.json the stream started from. Empty:
	// the stream's starting stock is read from the warehouse (stock_levels).
	// Either way the day's opening stock is that plus every adjustment
	// before the day.
	Snapshot string
	// Thresholds is a sku,location_id,threshold CSV (the stream's); empty
	// means the threshold the stream last stored for each key in
	// stock_levels, else DefaultThreshold. The live changes recorded in
	// Warehouse (threshold_changes) apply over it.
	Thresholds       string
	DefaultThreshold int64
	// Output is the report root (local directory or gs://bucket/prefix);
	// the report goes to <Output>/<Date>/.
	Output string
	// RunID names the run in report_runs and daily_summary.run_id.
	RunID string
	// StartedAt is when the run started (report_runs.started_at).
	StartedAt time.Time
	// Runner and JobID are recorded in report_runs.
	Runner, JobID string
	// Shards is how many key shards the work is split into (default 16).
	Shards int
	// ChunkBytes is the size of the CSV ranges read by one element
	// (default 8 MiB).
	ChunkBytes int64
	// TopN caps the report's lists (default 10); MaxCharts is how many
	// stock-over-the-day charts it draws (default 6).
	TopN, MaxCharts int
}

// Defaults.
const (
	DefaultOutput     = "./reports-out"
	DefaultShards     = 16
	DefaultChunkBytes = 8 << 20
)

func (c Config) withDefaults() Config {
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if c.Warehouse == "" {
		c.Warehouse = warehouse.DefaultURI
	}
	if c.Output == "" {
		c.Output = DefaultOutput
	}
	if c.Shards <= 0 {
		c.Shards = DefaultShards
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	if c.TopN <= 0 {
		c.TopN = 10
	}
	if c.MaxCharts <= 0 {
		c.MaxCharts = 6
	}
	if c.RunID == "" {
		c.RunID = fmt.Sprintf("%s-%d", c.Date, time.Now().UnixNano())
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = time.Now().UTC()
	}
	return c
}

// Window returns the report day [start, end) of cfg: midnight to midnight
// in its time zone (23 or 25 hours on a DST change).
func (c Config) Window() (start, end time.Time, err error) {
	tz := c.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("nightly: time zone: %w", err)
	}
	if !c.Date.IsValid() {
		return time.Time{}, time.Time{}, fmt.Errorf("nightly: report date %v is not a valid date", c.Date)
	}
	d := c.Date
	start = time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
	end = time.Date(d.Year, d.Month, d.Day+1, 0, 0, 0, 0, loc)
	return start, end, nil
}

// window returns the report day of c and the starts of its trend days: the
// reports.TrendDays-1 days before it, midnight in its time zone.
func (c Config) window() summary.Day {
	start, end, err := c.Window()
	if err != nil {
		panic(err)
	}
	w := summary.Day{Start: start.UnixMicro(), End: end.UnixMicro(), Days: make([]int64, reports.TrendDays-1)}
	for i := range w.Days {
		w.Days[i] = time.Date(start.Year(), start.Month(), start.Day()-len(w.Days)+i, 0, 0, 0, 0, start.Location()).UnixMicro()
	}
	return w
}

// Yesterday returns the day before now's date in time zone tz: the default
// report date.
func Yesterday(tz string, now time.Time) (civil.Date, error) {
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return civil.Date{}, fmt.Errorf("nightly: time zone: %w", err)
	}
	return civil.DateOf(now.In(loc)).AddDays(-1), nil
}

// reportDir returns where the report of cfg's date is written.
func (c Config) reportDir() string {
	return joinURI(c.withDefaults().Output, c.Date.String())
}

func joinURI(base, name string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + "/" + name
}
