package warehouse

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/internal/event"
)

// Row structs, one per table. Column names are the `bigquery` tags; the
// `parquet` tags name the same columns in the local warehouse. Timestamps are
// UTC time.Time values; DATE columns are time.Time at midnight UTC. Nullable
// columns are pointers. Locally a DATE column is stored as a midnight UTC
// timestamp (parquet-go v0.32 writes time.Time "date" columns in seconds, not
// days) and the DuckDB view casts it back to DATE. Quantities are signed: SOLD, DAMAGED and TRANSFER_OUT
// are negative.

// Row is the type set of the row types: a Go type names its table, so a
// write needs no table name (see Rows).
type Row interface {
	AdjustmentRow | StockLevelRow | AlertRow | DeadLetterRow | DailySummaryRow | ReportRunRow | ThresholdChangeRow
}

// AdjustmentRow is one row of the adjustments table: every adjustment the
// stream received, with what it did to stock and its Pub/Sub metadata.
type AdjustmentRow struct {
	EventID     string     `bigquery:"event_id" parquet:"event_id" json:"event_id"`
	SKU         string     `bigquery:"sku" parquet:"sku" json:"sku"`
	LocationID  string     `bigquery:"location_id" parquet:"location_id" json:"location_id"`
	Reason      string     `bigquery:"reason" parquet:"reason" json:"reason"`
	Quantity    int64      `bigquery:"quantity" parquet:"quantity" json:"quantity"`
	EventTime   time.Time  `bigquery:"event_time" parquet:"event_time,timestamp(microsecond)" json:"event_time"`
	Source      string     `bigquery:"source" parquet:"source" json:"source"`
	Status      string     `bigquery:"status" parquet:"status" json:"status"`
	MessageID   string     `bigquery:"message_id" parquet:"message_id" json:"message_id"`
	PublishTime *time.Time `bigquery:"publish_time" parquet:"publish_time,timestamp(microsecond)" json:"publish_time"`
	Attributes  string     `bigquery:"attributes" parquet:"attributes" json:"attributes"`
	IngestTime  time.Time  `bigquery:"ingest_time" parquet:"ingest_time,timestamp(microsecond)" json:"ingest_time"`
}

// Adjustment statuses.
const (
	StatusApplied    = "APPLIED"
	StatusSuperseded = "SUPERSEDED"
	StatusDuplicate  = "DUPLICATE"
)

// StockLevelRow is one row of stock_levels: one change of on-hand for a key.
type StockLevelRow struct {
	SKU            string    `bigquery:"sku" parquet:"sku" json:"sku"`
	LocationID     string    `bigquery:"location_id" parquet:"location_id" json:"location_id"`
	OnHand         int64     `bigquery:"on_hand" parquet:"on_hand" json:"on_hand"`
	PreviousOnHand int64     `bigquery:"previous_on_hand" parquet:"previous_on_hand" json:"previous_on_hand"`
	EventID        string    `bigquery:"event_id" parquet:"event_id" json:"event_id"`
	Reason         string    `bigquery:"reason" parquet:"reason" json:"reason"`
	EventTime      time.Time `bigquery:"event_time" parquet:"event_time,timestamp(microsecond)" json:"event_time"`
	ProcessedAt    time.Time `bigquery:"processed_at" parquet:"processed_at,timestamp(microsecond)" json:"processed_at"`
	Threshold      int64     `bigquery:"threshold" parquet:"threshold" json:"threshold"`
	Severity       string    `bigquery:"severity" parquet:"severity" json:"severity"`
}

// AlertRow is one row of low_stock_alerts: a key entering LOW or OUT, or
// recovering.
type AlertRow struct {
	AlertID          string    `bigquery:"alert_id" parquet:"alert_id" json:"alert_id"`
	SKU              string    `bigquery:"sku" parquet:"sku" json:"sku"`
	LocationID       string    `bigquery:"location_id" parquet:"location_id" json:"location_id"`
	Severity         string    `bigquery:"severity" parquet:"severity" json:"severity"`
	PreviousSeverity string    `bigquery:"previous_severity" parquet:"previous_severity" json:"previous_severity"`
	OnHand           int64     `bigquery:"on_hand" parquet:"on_hand" json:"on_hand"`
	Threshold        int64     `bigquery:"threshold" parquet:"threshold" json:"threshold"`
	EventID          string    `bigquery:"event_id" parquet:"event_id" json:"event_id"`
	EventTime        time.Time `bigquery:"event_time" parquet:"event_time,timestamp(microsecond)" json:"event_time"`
	AlertTime        time.Time `bigquery:"alert_time" parquet:"alert_time,timestamp(microsecond)" json:"alert_time"`
}

// DeadLetterRow is one row of dead_letters: input that could not be
// processed, kept with its raw payload and the reason.
type DeadLetterRow struct {
	Reason         string     `bigquery:"reason" parquet:"reason" json:"reason"`
	Error          string     `bigquery:"error" parquet:"error" json:"error"`
	Payload        []byte     `bigquery:"payload" parquet:"payload" json:"payload"`
	Attributes     string     `bigquery:"attributes" parquet:"attributes" json:"attributes"`
	MessageID      string     `bigquery:"message_id" parquet:"message_id" json:"message_id"`
	PublishTime    *time.Time `bigquery:"publish_time" parquet:"publish_time,timestamp(microsecond)" json:"publish_time"`
	Stage          string     `bigquery:"stage" parquet:"stage" json:"stage"`
	Origin         string     `bigquery:"origin" parquet:"origin" json:"origin"`
	DeadLetteredAt time.Time  `bigquery:"dead_lettered_at" parquet:"dead_lettered_at,timestamp(microsecond)" json:"dead_lettered_at"`
	// PayloadBytes and PayloadSHA256 describe the original payload; they
	// are filled, and Payload truncated to MaxPayloadBytes, when the row is
	// written (see Rows).
	PayloadBytes  int64  `bigquery:"payload_bytes" parquet:"payload_bytes" json:"payload_bytes"`
	PayloadSHA256 string `bigquery:"payload_sha256" parquet:"payload_sha256" json:"payload_sha256"`
}

// Dead-letter stages (the contract is event's).
const (
	StagePublish   = event.StagePublish
	stageConsume   = event.StageConsume
	StageStream    = event.StageStream
	StageWarehouse = event.StageWarehouse
)

// DailySummaryRow is one row of daily_summary: one key on one report date.
type DailySummaryRow struct {
	ReportDate        time.Time `bigquery:"report_date" parquet:"report_date,timestamp(millisecond)" json:"report_date"`
	SKU               string    `bigquery:"sku" parquet:"sku" json:"sku"`
	LocationID        string    `bigquery:"location_id" parquet:"location_id" json:"location_id"`
	OpeningOnHand     int64     `bigquery:"opening_on_hand" parquet:"opening_on_hand" json:"opening_on_hand"`
	ClosingOnHand     int64     `bigquery:"closing_on_hand" parquet:"closing_on_hand" json:"closing_on_hand"`
	Received          int64     `bigquery:"received" parquet:"received" json:"received"`
	Sold              int64     `bigquery:"sold" parquet:"sold" json:"sold"`
	Returned          int64     `bigquery:"returned" parquet:"returned" json:"returned"`
	Damaged           int64     `bigquery:"damaged" parquet:"damaged" json:"damaged"`
	Adjusted          int64     `bigquery:"adjusted" parquet:"adjusted" json:"adjusted"`
	TransferIn        int64     `bigquery:"transfer_in" parquet:"transfer_in" json:"transfer_in"`
	TransferOut       int64     `bigquery:"transfer_out" parquet:"transfer_out" json:"transfer_out"`
	CountedDelta      int64     `bigquery:"counted_delta" parquet:"counted_delta" json:"counted_delta"`
	NetChange         int64     `bigquery:"net_change" parquet:"net_change" json:"net_change"`
	MinOnHand         int64     `bigquery:"min_on_hand" parquet:"min_on_hand" json:"min_on_hand"`
	Events            int64     `bigquery:"events" parquet:"events" json:"events"`
	AlertsRaised      int64     `bigquery:"alerts_raised" parquet:"alerts_raised" json:"alerts_raised"`
	MinutesOutOfStock float64   `bigquery:"minutes_out_of_stock" parquet:"minutes_out_of_stock" json:"minutes_out_of_stock"`
	DaysOfCover       *float64  `bigquery:"days_of_cover" parquet:"days_of_cover" json:"days_of_cover"`
	Threshold         int64     `bigquery:"threshold" parquet:"threshold" json:"threshold"`
	StreamingOnHand   *int64    `bigquery:"streaming_on_hand" parquet:"streaming_on_hand" json:"streaming_on_hand"`
	Reconciled        bool      `bigquery:"reconciled" parquet:"reconciled" json:"reconciled"`
	RunID             string    `bigquery:"run_id" parquet:"run_id" json:"run_id"`
	Sold7d            int64     `bigquery:"sold_7d" parquet:"sold_7d" json:"sold_7d"`
	Sold28d           int64     `bigquery:"sold_28d" parquet:"sold_28d" json:"sold_28d"`
}

// ReportRunRow is one row of report_runs: one run of the nightly job.
type ReportRunRow struct {
	RunID      string    `bigquery:"run_id" parquet:"run_id" json:"run_id"`
	ReportDate time.Time `bigquery:"report_date" parquet:"report_date,timestamp(millisecond)" json:"report_date"`
	Status     string    `bigquery:"status" parquet:"status" json:"status"`
	StartedAt  time.Time `bigquery:"started_at" parquet:"started_at,timestamp(microsecond)" json:"started_at"`
	// FinishedAt is nil while the run is RUNNING.
	FinishedAt *time.Time `bigquery:"finished_at" parquet:"finished_at,timestamp(microsecond)" json:"finished_at"`
	Keys       int64      `bigquery:"keys" parquet:"keys" json:"keys"`
	Events     int64      `bigquery:"events" parquet:"events" json:"events"`
	Mismatches int64      `bigquery:"mismatches" parquet:"mismatches" json:"mismatches"`
	OutputURI  string     `bigquery:"output_uri" parquet:"output_uri" json:"output_uri"`
	Runner     string     `bigquery:"runner" parquet:"runner" json:"runner"`
	JobID      string     `bigquery:"job_id" parquet:"job_id" json:"job_id"`
	Error      string     `bigquery:"error" parquet:"error" json:"error"`
}

// Report run statuses.
const (
	RunRunning   = "RUNNING"
	RunSucceeded = "SUCCEEDED"
	RunFailed    = "FAILED"
)

func init() {
	// Rows carry time.Time and pointers, which Beam's schema coder does not
	// take; a JSON coder keeps them exact (UTC, nanoseconds, nil). Beam
	// finds coder functions by name, so each type has its own pair.
	registerRow(reflect.TypeFor[AdjustmentRow](), encodeAdjustmentRow, decodeAdjustmentRow)
	registerRow(reflect.TypeFor[StockLevelRow](), encodeStockLevelRow, decodeStockLevelRow)
	registerRow(reflect.TypeFor[AlertRow](), encodeAlertRow, decodeAlertRow)
	registerRow(reflect.TypeFor[DeadLetterRow](), encodeDeadLetterRow, decodeDeadLetterRow)
	registerRow(reflect.TypeFor[DailySummaryRow](), encodeDailySummaryRow, decodeDailySummaryRow)
	registerRow(reflect.TypeFor[ReportRunRow](), encodeReportRunRow, decodeReportRunRow)
}

func registerRow(t reflect.Type, enc, dec any) {
	beam.RegisterType(t)
	beam.RegisterCoder(t, enc, dec)
}

func decodeJSON[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

func encodeAdjustmentRow(v AdjustmentRow) ([]byte, error)     { return json.Marshal(v) }
func decodeAdjustmentRow(b []byte) (AdjustmentRow, error)     { return decodeJSON[AdjustmentRow](b) }
func encodeStockLevelRow(v StockLevelRow) ([]byte, error)     { return json.Marshal(v) }
func decodeStockLevelRow(b []byte) (StockLevelRow, error)     { return decodeJSON[StockLevelRow](b) }
func encodeAlertRow(v AlertRow) ([]byte, error)               { return json.Marshal(v) }
func decodeAlertRow(b []byte) (AlertRow, error)               { return decodeJSON[AlertRow](b) }
func encodeDeadLetterRow(v DeadLetterRow) ([]byte, error)     { return json.Marshal(v) }
func decodeDeadLetterRow(b []byte) (DeadLetterRow, error)     { return decodeJSON[DeadLetterRow](b) }
func encodeDailySummaryRow(v DailySummaryRow) ([]byte, error) { return json.Marshal(v) }
func decodeDailySummaryRow(b []byte) (DailySummaryRow, error) { return decodeJSON[DailySummaryRow](b) }
func encodeReportRunRow(v ReportRunRow) ([]byte, error)       { return json.Marshal(v) }
func decodeReportRunRow(b []byte) (ReportRunRow, error)       { return decodeJSON[ReportRunRow](b) }
