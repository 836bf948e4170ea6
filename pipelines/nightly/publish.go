package nightly

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/civil"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/inventory-events/inventory/loaders/objects"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports"
	"github.com/inventory-events/inventory/transforms/summary"
	"golang.org/x/sync/errgroup"
)

func init() {
	register.DoFn5x1[context.Context, int, func(*[]byte) bool, func(*summary.Gather) bool, func(int, int), error](&publishFn{})
	register.Iter1[[]byte]()
	register.Emitter2[int, int]()
	register.Iter1[summary.Gather]()
}

// publishFn is the job's last step: it renders the report files and
// replaces the date in daily_summary and report_runs. It runs once, on the
// one group of the impulse and the gathered rows (the impulse is always there, so an empty day still gets its report); a retry
// rewrites the same files and partitions.
type publishFn struct {
	Date      string
	TimeZone  string
	Window    summary.Day
	Warehouse string
	Output    string
	RunID     string
	StartedAt time.Time
	Runner    string
	JobID     string
	TopN      int
}

func newPublishFn(cfg Config) *publishFn {
	return &publishFn{Date: cfg.Date.String(), TimeZone: cfg.TimeZone, Window: cfg.window(),
		Warehouse: cfg.Warehouse, Output: cfg.Output, RunID: cfg.RunID, StartedAt: cfg.StartedAt,
		Runner: cfg.Runner, JobID: cfg.JobID, TopN: cfg.TopN}
}

// ProcessElement publishes. Its emitter is never called: the output only
// gives the stage an output, since Prism spins a core for the whole bundle
// of a stage without one (docs/beam-notes.md, "Speed on Prism").
func (f *publishFn) ProcessElement(ctx context.Context, _ int, _ func(*[]byte) bool, gathers func(*summary.Gather) bool, _ func(int, int)) error {
	var g summary.Gather
	var one summary.Gather
	for gathers(&one) {
		g.Merge(one)
	}
	date, err := civil.ParseDate(f.Date)
	if err != nil {
		return fmt.Errorf("nightly: publish: %w", err)
	}
	history := trendHistory(date, g.Days)
	rep := reports.New(reports.Meta{Date: f.Date, TimeZone: f.TimeZone,
		DayStart: time.UnixMicro(f.Window.Start), DayEnd: time.UnixMicro(f.Window.End),
		RunID: f.RunID, GeneratedAt: time.Now(), TopN: f.TopN, History: history}, g.Rows, g.Series())
	dir := joinURI(f.Output, f.Date)
	// The report files and daily_summary do not depend on each other: they
	// are written at the same time (each is mostly rendering, encoding and
	// waiting for the disk or the network), and report_runs says SUCCEEDED
	// only once both are. A retry rewrites both.
	var eg errgroup.Group
	eg.Go(func() error { return writeReport(ctx, dir, rep) })
	eg.Go(func() error {
		if err := warehouse.ReplaceDate(ctx, f.Warehouse, date, dailySummaryRows(rep)); err != nil {
			return fmt.Errorf("nightly: publish daily_summary: %w", err)
		}
		return nil
	})
	if err := eg.Wait(); err != nil {
		return err
	}
	fin := time.Now().UTC()
	run := warehouse.ReportRunRow{RunID: f.RunID, ReportDate: date.In(time.UTC), Status: warehouse.RunSucceeded,
		StartedAt: f.StartedAt.UTC(), FinishedAt: &fin, Keys: rep.Totals.Keys, Events: rep.Totals.Events,
		Mismatches: rep.Totals.Mismatches, OutputURI: dir, Runner: f.Runner, JobID: f.JobID}
	if err := warehouse.ReplaceDate(ctx, f.Warehouse, date, []warehouse.ReportRunRow{run}); err != nil {
		return fmt.Errorf("nightly: publish report_runs: %w", err)
	}
	return nil
}

// trendHistory returns the trend days before date as the report shows them:
// days holds the totals of the len(days) days before date, oldest first; a
// day no key had a known stock on is not Reported.
func trendHistory(date civil.Date, days []summary.DayTotals) []reports.Day {
	out := make([]reports.Day, 0, len(days))
	for i, d := range days {
		if d.Keys == 0 && d.UnitsSold == 0 {
			continue
		}
		out = append(out, reports.Day{Date: date.AddDays(i - len(days)).String(), Reported: true, Keys: d.Keys,
			UnitsSold: d.UnitsSold, KeysBelow: d.KeysBelow, KeysOut: d.KeysOut})
	}
	return out
}

// dailySummaryRows converts the rows of rep to daily_summary rows.
func dailySummaryRows(rep *reports.Report) []warehouse.DailySummaryRow {
	d, _ := time.Parse(time.DateOnly, rep.Date)
	out := make([]warehouse.DailySummaryRow, len(rep.Rows))
	for i, r := range rep.Rows {
		out[i] = warehouse.DailySummaryRow{ReportDate: d, SKU: r.SKU, LocationID: r.LocationID,
			OpeningOnHand: r.OpeningOnHand, ClosingOnHand: r.ClosingOnHand, Received: r.Received, Sold: r.Sold,
			Returned: r.Returned, Damaged: r.Damaged, Adjusted: r.Adjusted, TransferIn: r.TransferIn,
			TransferOut: r.TransferOut, CountedDelta: r.CountedDelta, NetChange: r.NetChange,
			MinOnHand: r.MinOnHand, Events: r.Events, AlertsRaised: r.AlertsRaised,
			MinutesOutOfStock: r.MinutesOutOfStock, DaysOfCover: r.DaysOfCover, Threshold: r.Threshold,
			StreamingOnHand: r.StreamingOnHand, Reconciled: r.Reconciled, RunID: rep.RunID,
			Sold7d: r.Sold7d, Sold28d: r.Sold28d}
	}
	return out
}

// Report file names under <output>/<date>/.
const (
	indexFile    = "index.html"
	CSVFile      = "summary.csv"
	jsonFile     = "summary.json"
	markdownFile = "summary.md"
)

// writeReport renders rep into dir (local or gs://): index.html,
// summary.csv, summary.json and summary.md. index.html is published last,
// so a page that links the data files is never ahead of them.
func writeReport(ctx context.Context, dir string, rep *reports.Report) error {
	files := []struct {
		name, contentType string
		render            func(io.Writer, *reports.Report) error
	}{
		{CSVFile, "text/csv; charset=utf-8", reports.WriteCSV},
		{jsonFile, "application/json", reports.WriteJSON},
		{markdownFile, "text/markdown; charset=utf-8", reports.WriteMarkdown},
		{indexFile, "text/html; charset=utf-8", reports.WriteHTML}, // last
	}
	// The renderers only read rep, so they run at the same time, each
	// straight into its object (atomic per file; on GCS with its content
	// type, so that the page opens in a browser rather than downloading):
	// summary.json of a 30,000-key day is tens of megabytes, and it is
	// neither held whole in memory nor waited for by the others.
	last := len(files) - 1
	ws := make([]objects.Writer, len(files))
	var g errgroup.Group
	for i, f := range files {
		g.Go(func() error {
			w, err := objects.Create(ctx, joinURI(dir, f.name), f.contentType)
			if err != nil {
				return fmt.Errorf("nightly: write report: %w", err)
			}
			bw := bufio.NewWriterSize(w, 256<<10)
			if err := f.render(bw, rep); err != nil {
				w.Abort()
				return fmt.Errorf("nightly: render %s: %w", f.name, err)
			}
			if err := bw.Flush(); err != nil {
				w.Abort()
				return fmt.Errorf("nightly: write report %s: %w", f.name, err)
			}
			if i == last {
				ws[i] = w // published once the others are
				return nil
			}
			if err := w.Close(); err != nil {
				return fmt.Errorf("nightly: write report: %w", err)
			}
			return nil
		})
	}
	err := g.Wait()
	if w := ws[last]; w != nil {
		if err != nil {
			w.Abort()
			return err
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("nightly: write report: %w", err)
		}
	}
	return err
}
