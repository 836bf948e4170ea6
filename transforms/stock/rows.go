package stock

import (
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// adjustmentRow is the adjustments row of rec, which Apply gave outcome.
func adjustmentRow(rec *eventRecord, outcome ledger.Outcome, now time.Time) warehouse.AdjustmentRow {
	a := &rec.Adj
	row := warehouse.AdjustmentRow{
		EventID:    a.EventID,
		SKU:        a.SKU,
		LocationID: a.LocationID,
		Reason:     a.Reason.String(),
		Quantity:   a.Quantity,
		EventTime:  a.Time(),
		Source:     a.Source,
		Status:     status(outcome),
		MessageID:  rec.MessageID,
		Attributes: attributesJSON(rec.Attributes),
		IngestTime: now,
	}
	if rec.PublishTime != 0 {
		t := time.UnixMicro(rec.PublishTime).UTC()
		row.PublishTime = &t
	}
	return row
}

func status(o ledger.Outcome) string {
	switch o {
	case ledger.Superseded:
		return warehouse.StatusSuperseded
	case ledger.Duplicate:
		return warehouse.StatusDuplicate
	}
	return warehouse.StatusApplied
}

// stockLevelRow is the stock_levels row of a change of on-hand by a.
func stockLevelRow(a *event.Adjustment, res ledger.Result, threshold int64, sev ledger.Severity, now time.Time) warehouse.StockLevelRow {
	return warehouse.StockLevelRow{
		SKU:            a.SKU,
		LocationID:     a.LocationID,
		OnHand:         res.OnHand,
		PreviousOnHand: res.Previous,
		EventID:        a.EventID,
		Reason:         a.Reason.String(),
		EventTime:      a.Time(),
		ProcessedAt:    now,
		Threshold:      threshold,
		Severity:       sev.String(),
	}
}

// alertRow is the low_stock_alerts row of the change of severity that a
// caused. Severity is LOW, OUT or RECOVERED; PreviousSeverity is OK, LOW,
// OUT, or "" for a key that had no state before.
func alertRow(a *event.Adjustment, res ledger.Result, threshold int64, now time.Time) warehouse.AlertRow {
	prev := ""
	if res.From != ledger.Unknown {
		prev = res.From.String()
	}
	return warehouse.AlertRow{
		AlertID:          ledger.AlertID(a.Key(), a.EventID, res.To),
		SKU:              a.SKU,
		LocationID:       a.LocationID,
		Severity:         res.To.AlertName(),
		PreviousSeverity: prev,
		OnHand:           res.OnHand,
		Threshold:        threshold,
		EventID:          a.EventID,
		EventTime:        a.Time(),
		AlertTime:        now,
	}
}

// tooLateDeadLetter is the dead-letter row of an event older than its key's
// dedup horizon. The payload is the event in the JSON encoding.
func tooLateDeadLetter(rec *eventRecord, now time.Time) warehouse.DeadLetterRow {
	payload, _ := event.MarshalJSON(&rec.Adj)
	row := warehouse.DeadLetterRow{
		Reason: event.CodeTooLate,
		Error: event.CodeTooLate + ": event_time " + event.FormatTime(rec.Adj.EventTime) +
			" is older than the dedup horizon of " + rec.Adj.Key().String(),
		Payload:        payload,
		Attributes:     attributesJSON(rec.Attributes),
		MessageID:      rec.MessageID,
		Stage:          warehouse.StageStream,
		Origin:         OriginPubSub,
		DeadLetteredAt: now,
	}
	if rec.PublishTime != 0 {
		t := time.UnixMicro(rec.PublishTime).UTC()
		row.PublishTime = &t
	}
	return row
}
