package stock

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	register.Function2x0(payloadToBatch)
	register.Emitter1[pubsubio.Batch]()
}

// payloadToBatch wraps one JSON payload as a one-message batch.
func payloadToBatch(data []byte, emit func(pubsubio.Batch)) {
	emit(pubsubio.Batch{Messages: []pubsubio.Message{{ID: "ts", Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingJSON}}}})
}

// TestStreamOutOfOrderAndLate feeds events with TestStream, moving the
// watermark past some of them before they arrive: late and out-of-order
// events are neither dropped nor applied twice, and a delta older than
// the latest count is superseded whenever it arrives.
func TestStreamOutOfOrderAndLate(t *testing.T) {
	slowtest.Skip(t, "a Prism job with TestStream")
	withoutPrismSplits(t)
	ms := func(h int) int64 { return at(h) / 1000 }
	payload := func(id, sku string, reason event.Reason, qty int64, h int) []byte {
		return adj(id, sku, "L1", reason, qty, h).Data
	}
	cfg := teststream.NewConfig()
	steps := []struct {
		h       int
		payload []byte
	}{
		{10, payload("o1", "O", event.Counted, 50, 10)},
		{15, payload("o2", "O", event.Sold, -45, 15)}, // 5: LOW
		{5, payload("o3", "O", event.Sold, -40, 5)},   // late, before the count: superseded
		{12, payload("o4", "O", event.Received, 10, 12)},
		{12, payload("o4", "O", event.Received, 10, 12)}, // redelivered, late
		{12, payload("q1", "Q", event.Received, 20, 12)},
		{1, payload("q2", "Q", event.Sold, -15, 1)}, // late, no count: applied
	}
	for i, st := range steps {
		if err := cfg.AddElements(ms(st.h), st.payload); err != nil {
			t.Fatal(err)
		}
		// Move the watermark past the next events so that they arrive late.
		if i == 1 || i == 5 {
			if err := cfg.AdvanceWatermark(ms(20 + i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cfg.AdvanceWatermarkToInfinity(); err != nil {
		t.Fatal(err)
	}

	p, s := beam.NewPipelineWithRoot()
	payloads := teststream.Create(s, cfg)
	out := stockPipeline(s, beam.ParDo(s, payloadToBatch, payloads), false)
	passert.Equals(s, beam.ParDo(s, levelString, out.Levels),
		"O@L1 0->50 OK o1", "O@L1 50->5 LOW o2", "O@L1 5->15 OK o4",
		"Q@L1 0->20 OK q1", "Q@L1 20->5 LOW q2")
	passert.Equals(s, beam.ParDo(s, alertString, out.Alerts),
		"O@L1 OK->LOW 5/10 o2", "O@L1 LOW->RECOVERED 15/10 o4", "Q@L1 OK->LOW 5/10 q2")
	passert.Equals(s, beam.ParDo(s, adjustmentString, out.Adjustments),
		"o1 APPLIED", "o2 APPLIED", "o3 SUPERSEDED", "o4 APPLIED", "o4 DUPLICATE", "q1 APPLIED", "q2 APPLIED")
	passert.Empty(s, out.DeadLetters)
	ptest.RunAndValidate(t, p)
}
