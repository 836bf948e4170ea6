package warehouse

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestLocalRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	pt := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	rows := []AdjustmentRow{
		{EventID: "e1", SKU: "A", LocationID: "L1", Reason: "SOLD", Quantity: -2, EventTime: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Status: StatusApplied, PublishTime: &pt, Attributes: `{"k":"v"}`, IngestTime: pt},
		{EventID: "e2", SKU: "A", LocationID: "L1", Reason: "RECEIVED", Quantity: 5, EventTime: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Status: StatusApplied, IngestTime: pt},
	}
	if err := w.Write(ctx, Adjustments, rows); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Query(ctx, dir, "SELECT event_id, quantity, event_time, publish_time, DATE(event_time) AS d FROM adjustments ORDER BY event_id", "table", &buf); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	buf.Reset()
	if err := Query(ctx, dir, "SELECT * FROM daily_summary", "json", &buf); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
}
