package warehouse

import (
	"fmt"
	"reflect"
)

// Table names.
const (
	Adjustments    = "adjustments"
	StockLevels    = "stock_levels"
	LowStockAlerts = "low_stock_alerts"
	DeadLetters    = "dead_letters"
	dailySummary   = "daily_summary"
	reportRuns     = "report_runs"
	// ThresholdChanges is the live reorder threshold changes (threshold.go).
	ThresholdChanges = "threshold_changes"
)

// ColumnType is the type of a column, named as in BigQuery; the local
// warehouse maps it to Parquet and DuckDB types.
type ColumnType string

// Column types. In Go a column holds string, int64, float64, bool, []byte or
// time.Time (TIMESTAMP, and DATE at midnight UTC); see Row.
const (
	typeString    ColumnType = "STRING"
	TypeInteger   ColumnType = "INTEGER"
	TypeFloat     ColumnType = "FLOAT"
	TypeBoolean   ColumnType = "BOOLEAN"
	TypeBytes     ColumnType = "BYTES"
	TypeTimestamp ColumnType = "TIMESTAMP"
	TypeDate      ColumnType = "DATE"
)

// Column is one column of a table.
type Column struct {
	Name        string
	Type        ColumnType
	Description string
	// Required columns are NOT NULL (REQUIRED in BigQuery).
	Required bool
}

// Table describes one warehouse table: its columns (every one described),
// daily partitioning column, clustering and Go row type.
type Table struct {
	Name        string
	Description string
	Columns     []Column
	// PartitionColumn is the TIMESTAMP or DATE column the table is
	// partitioned by, one partition per UTC day.
	PartitionColumn string
	Clustering      []string
	RowType         reflect.Type

	fields map[string]int // column name -> index of the row struct field
}

func str(name, desc string) Column {
	return Column{Name: name, Type: typeString, Description: desc}
}
func i64(name, desc string) Column {
	return Column{Name: name, Type: TypeInteger, Description: desc}
}
func f64(name, desc string) Column {
	return Column{Name: name, Type: TypeFloat, Description: desc}
}
func ts(name, desc string) Column {
	return Column{Name: name, Type: TypeTimestamp, Description: desc}
}
func date(name, desc string) Column {
	return Column{Name: name, Type: TypeDate, Description: desc}
}
func boolean(name, desc string) Column {
	return Column{Name: name, Type: TypeBoolean, Description: desc}
}
func byts(name, desc string) Column {
	return Column{Name: name, Type: TypeBytes, Description: desc}
}

// required marks a column REQUIRED. Only columns of the first version of a
// table may be REQUIRED: BigQuery adds new columns as NULLABLE.
func required(c Column) Column {
	c.Required = true
	return c
}

const (
	descSKU      = "Stock keeping unit."
	descLocation = "Store or warehouse location of the stock."
	descMsgID    = "Pub/Sub message ID the row came from; empty when it did not come from Pub/Sub."
	descPubTime  = "Pub/Sub publish time of the message; NULL when it did not come from Pub/Sub."
	descAttrs    = "Pub/Sub message attributes as a JSON object."
)

// Tables lists every warehouse table.
var Tables = []*Table{
	{
		Name:            Adjustments,
		Description:     "Every inventory adjustment received by the streaming job, one row per delivery; dedupe on event_id.",
		PartitionColumn: "event_time",
		Clustering:      []string{"sku", "location_id"},
		RowType:         reflect.TypeFor[AdjustmentRow](),
		Columns: []Column{
			required(str("event_id", "Idempotency key of the real-world adjustment; redeliveries keep it.")),
			required(str("sku", descSKU)),
			required(str("location_id", descLocation)),
			str("reason", "RECEIVED, SOLD, RETURNED, DAMAGED, ADJUSTED, COUNTED, TRANSFER_IN or TRANSFER_OUT."),
			i64("quantity", "Signed change of on-hand (SOLD, DAMAGED, TRANSFER_OUT negative); for COUNTED the absolute on-hand found."),
			required(ts("event_time", "When the adjustment happened; the table is partitioned by its UTC date.")),
			str("source", "System that sent the adjustment."),
			str("status", "APPLIED, SUPERSEDED (older than the key's latest count: recorded, not applied) or DUPLICATE (event_id seen before)."),
			str("message_id", descMsgID),
			ts("publish_time", descPubTime),
			str("attributes", descAttrs),
			ts("ingest_time", "When the streaming job processed the message."),
		},
	},
	{
		Name:            StockLevels,
		Description:     "One row per change of on-hand of a (sku, location_id), written by the streaming job.",
		PartitionColumn: "event_time",
		Clustering:      []string{"sku", "location_id"},
		RowType:         reflect.TypeFor[StockLevelRow](),
		Columns: []Column{
			required(str("sku", descSKU)),
			required(str("location_id", descLocation)),
			i64("on_hand", "On-hand quantity after the event."),
			i64("previous_on_hand", "On-hand quantity before the event."),
			str("event_id", "Adjustment that changed the stock."),
			str("reason", "Reason of that adjustment."),
			required(ts("event_time", "Event time of that adjustment; the table is partitioned by its UTC date.")),
			ts("processed_at", "When the streaming job applied it."),
			i64("threshold", "Reorder threshold of the key when it was applied."),
			str("severity", "OK, LOW (on_hand < threshold) or OUT (on_hand <= 0) after the event."),
		},
	},
	{
		Name:            LowStockAlerts,
		Description:     "Low-stock alerts and recoveries, one per crossing; dedupe on alert_id.",
		PartitionColumn: "alert_time",
		Clustering:      []string{"sku", "location_id"},
		RowType:         reflect.TypeFor[AlertRow](),
		Columns: []Column{
			required(str("alert_id", "Deterministic ID of the alert; a redelivered alert keeps it.")),
			required(str("sku", descSKU)),
			required(str("location_id", descLocation)),
			str("severity", "LOW, OUT or RECOVERED."),
			str("previous_severity", "Severity before the crossing: OK, LOW or OUT."),
			i64("on_hand", "On-hand quantity that triggered the alert."),
			i64("threshold", "Reorder threshold of the key."),
			str("event_id", "Adjustment that caused the crossing."),
			ts("event_time", "Event time of that adjustment."),
			required(ts("alert_time", "When the alert was raised; the table is partitioned by its UTC date.")),
		},
	},
	{
		Name:            DeadLetters,
		Description:     "Input that could not be processed, with its raw payload and the reason; nothing is dropped silently.",
		PartitionColumn: "dead_lettered_at",
		Clustering:      []string{"stage", "reason"},
		RowType:         reflect.TypeFor[DeadLetterRow](),
		Columns: []Column{
			required(str("reason", "Short machine-readable reason, e.g. invalid_json, invalid_field, warehouse_rejected.")),
			str("error", "Full error message."),
			byts("payload", "Raw message payload (or the rejected row as JSON for stage warehouse), truncated to its first 65536 bytes; see payload_bytes."),
			str("attributes", descAttrs),
			str("message_id", descMsgID),
			ts("publish_time", descPubTime),
			str("stage", "Where it failed: publish, consume, stream or warehouse."),
			str("origin", "Component, topic/subscription or table the input came from."),
			required(ts("dead_lettered_at", "When it was dead-lettered; the table is partitioned by its UTC date.")),
			i64("payload_bytes", "Length in bytes of the original payload; payload holds at most its first 65536 bytes."),
			str("payload_sha256", "SHA-256 of the original payload (hex), so a truncated payload can still be matched to its message."),
		},
	},
	{
		Name:            dailySummary,
		Description:     "Nightly per-(sku, location_id) summary of one report date; a rerun replaces the date.",
		PartitionColumn: "report_date",
		Clustering:      []string{"sku", "location_id"},
		RowType:         reflect.TypeFor[DailySummaryRow](),
		Columns: []Column{
			required(date("report_date", "Report date in the configured time zone; the table is partitioned by it.")),
			required(str("sku", descSKU)),
			required(str("location_id", descLocation)),
			i64("opening_on_hand", "On-hand at the start of the day."),
			i64("closing_on_hand", "On-hand at the end of the day, computed by the batch job."),
			i64("received", "Sum of RECEIVED quantities."),
			i64("sold", "Sum of SOLD quantities (negative)."),
			i64("returned", "Sum of RETURNED quantities."),
			i64("damaged", "Sum of DAMAGED quantities (negative)."),
			i64("adjusted", "Sum of ADJUSTED quantities (signed)."),
			i64("transfer_in", "Sum of TRANSFER_IN quantities."),
			i64("transfer_out", "Sum of TRANSFER_OUT quantities (negative)."),
			i64("counted_delta", "Change of on-hand made by COUNTED events."),
			i64("net_change", "closing_on_hand - opening_on_hand."),
			i64("min_on_hand", "Lowest on-hand during the day."),
			i64("events", "Number of adjustments applied on the day."),
			i64("alerts_raised", "Number of LOW or OUT alerts raised on the day."),
			f64("minutes_out_of_stock", "Minutes of the day with on_hand <= 0."),
			f64("days_of_cover", "Days the closing stock lasts at the average daily units sold of the 28 days ending with report_date: max(closing_on_hand, 0) / (sold_28d / days), days being the days of those 28 since the key's first data (28 once the data covers them); NULL when nothing was sold."),
			i64("threshold", "Reorder threshold of the key at the end of the day: the thresholds file with the live changes (threshold_changes) made before then."),
			i64("streaming_on_hand", "Latest on-hand of the key in stock_levels at the end of the day; NULL if none."),
			boolean("reconciled", "Whether closing_on_hand equals streaming_on_hand."),
			str("run_id", "report_runs.run_id of the run that wrote the row."),
			i64("sold_7d", "Units sold (positive) in the 7 days ending with report_date, in the report's time zone, from the adjustments (never from earlier reports)."),
			i64("sold_28d", "Units sold (positive) in the 28 days ending with report_date, in the report's time zone, from the adjustments (never from earlier reports)."),
		},
	},
	{
		Name:            reportRuns,
		Description:     "One row per run of the nightly summary job; a rerun of a date replaces it.",
		PartitionColumn: "report_date",
		Clustering:      []string{"status"},
		RowType:         reflect.TypeFor[ReportRunRow](),
		Columns: []Column{
			required(str("run_id", "Unique ID of the run.")),
			required(date("report_date", "Report date the run summarised; the table is partitioned by it.")),
			str("status", "RUNNING, SUCCEEDED or FAILED."),
			ts("started_at", "When the run started."),
			ts("finished_at", "When the run finished; NULL while RUNNING."),
			i64("keys", "Number of (sku, location_id) keys summarised."),
			i64("events", "Number of adjustments read."),
			i64("mismatches", "Keys whose batch closing on-hand differs from stock_levels."),
			str("output_uri", "Directory or gs:// prefix of the rendered report."),
			str("runner", "Beam runner: prism, dataflow, ..."),
			str("job_id", "Runner job ID."),
			str("error", "Error message of a FAILED run."),
		},
	},
	thresholdChangesTable,
}

var (
	tablesByName = map[string]*Table{}
	tablesByType = map[reflect.Type]*Table{}
)

func init() {
	for _, t := range Tables {
		t.fields = map[string]int{}
		for i := 0; i < t.RowType.NumField(); i++ {
			if name := t.RowType.Field(i).Tag.Get("bigquery"); name != "" {
				t.fields[name] = i
			}
		}
		for _, c := range t.Columns {
			if _, ok := t.fields[c.Name]; !ok {
				panic(fmt.Sprintf("warehouse: table %s: column %s has no field in %v", t.Name, c.Name, t.RowType))
			}
		}
		if len(t.fields) != len(t.Columns) {
			panic(fmt.Sprintf("warehouse: table %s: %v has fields outside the columns", t.Name, t.RowType))
		}
		tablesByName[t.Name] = t
		tablesByType[t.RowType] = t
	}
}

// TableByName returns the table called name.
func TableByName(name string) (*Table, error) {
	t, ok := tablesByName[name]
	if !ok {
		return nil, fmt.Errorf("warehouse: unknown table %q", name)
	}
	return t, nil
}

// tableOf returns the table whose rows are T.
func tableOf[T Row]() *Table { return tablesByType[reflect.TypeFor[T]()] }
