package warehouse

import (
	"encoding/json"
	"reflect"
	"time"
)

// ThresholdChangeRow is one row of threshold_changes: a live change of a
// reorder threshold, as the streaming job received and applied it.
type ThresholdChangeRow struct {
	ChangeID          string    `bigquery:"change_id" parquet:"change_id" json:"change_id"`
	SKU               string    `bigquery:"sku" parquet:"sku" json:"sku"`
	LocationID        string    `bigquery:"location_id" parquet:"location_id" json:"location_id"`
	Threshold         int64     `bigquery:"threshold" parquet:"threshold" json:"threshold"`
	PreviousThreshold *int64    `bigquery:"previous_threshold" parquet:"previous_threshold" json:"previous_threshold"`
	ChangedBy         string    `bigquery:"changed_by" parquet:"changed_by" json:"changed_by"`
	ChangedAt         time.Time `bigquery:"changed_at" parquet:"changed_at,timestamp(microsecond)" json:"changed_at"`
	Applied           bool      `bigquery:"applied" parquet:"applied" json:"applied"`
	MessageID         string    `bigquery:"message_id" parquet:"message_id" json:"message_id"`
	RecordedAt        time.Time `bigquery:"recorded_at" parquet:"recorded_at,timestamp(microsecond)" json:"recorded_at"`
}

var thresholdChangesTable = &Table{
	Name:            ThresholdChanges,
	Description:     "Live changes of reorder thresholds (inventory thresholds set), one row per change received by the streaming job; dedupe on change_id. The job restores them at start, over the thresholds file.",
	PartitionColumn: "changed_at",
	Clustering:      []string{"sku", "location_id"},
	RowType:         reflect.TypeFor[ThresholdChangeRow](),
	Columns: []Column{
		required(str("change_id", "Unique ID of the change; a redelivery keeps it.")),
		required(str("sku", descSKU)),
		required(str("location_id", "Location the rule is for, or * for every location of the SKU.")),
		i64("threshold", "The new reorder threshold of the rule."),
		i64("previous_threshold", "The rule's threshold before the change (thresholds file or an earlier change); NULL if the rule did not exist."),
		str("changed_by", "Who made the change."),
		required(ts("changed_at", "When the change was made; of two changes of one rule the later wins. The table is partitioned by its UTC date.")),
		boolean("applied", "False when a later change of the same rule had already been applied, so this one changed nothing."),
		str("message_id", descMsgID),
		ts("recorded_at", "When the streaming job applied it."),
	},
}

func init() {
	registerRow(reflect.TypeFor[ThresholdChangeRow](), encodeThresholdChangeRow, decodeThresholdChangeRow)
}

func encodeThresholdChangeRow(v ThresholdChangeRow) ([]byte, error) { return json.Marshal(v) }
func decodeThresholdChangeRow(b []byte) (ThresholdChangeRow, error) {
	return decodeJSON[ThresholdChangeRow](b)
}
