// Package nightly is the nightly summary batch job: for one report date it
// reads the day's adjustments (a CSV, the local warehouse or BigQuery), the
// opening stock (the previous daily_summary, else the snapshot) and the
// streaming job's stock_levels, replays each (sku, location_id) through the
// shared ledger rules, and writes daily_summary, report_runs and the report
// files (<output>/<date>/index.html, summary.csv, summary.json).
//
// Build is the pipeline that main and the tests share. The job publishes
// its own results (report files and warehouse rows) from its last step, so
// it is complete on Dataflow as on Prism; Run adds the report_runs
// bookkeeping around a local Prism run, and Start runs it in the background.
package nightly
