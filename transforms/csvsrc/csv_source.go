package csvsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/objects"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	register.DoFn3x1[context.Context, []byte, func(pubsubio.Batch), error](&readCSVFn{})
	register.Emitter1[pubsubio.Batch]()
}

// Attributes put on replayed CSV rows. A row that cannot be parsed travels
// as a message with AttrCSVError set to its reason code, so that it is
// dead-lettered by the same DecodeEvents as a bad Pub/Sub message.
const (
	AttrCSVError  = "csv_error"
	AttrCSVDetail = "csv_error_detail"
	AttrCSVLine   = "csv_line"
)

// defaultBatchSize is how many messages make one Batch.
const defaultBatchSize = 1000

// Read is a composite transform that reads an adjustments CSV (a local
// path or gs://) and returns it as a bounded PCollection of Batch, each row a
// message in the JSON schema encoding whose ID is "FILE:LINE", in file order.
func Read(s beam.Scope, uri string) beam.PCollection {
	s = s.Scope("csvsrc.Read")
	return beam.ParDo(s, &readCSVFn{URI: uri, BatchSize: defaultBatchSize}, beam.Impulse(s))
}

type readCSVFn struct {
	URI       string
	BatchSize int
}

func (f *readCSVFn) ProcessElement(ctx context.Context, _ []byte, emit func(pubsubio.Batch)) error {
	rc, err := objects.Open(ctx, f.URI)
	if err != nil {
		return fmt.Errorf("read csv %s: %w", f.URI, err)
	}
	defer rc.Close()
	cr, err := newReader(rc, f.URI)
	if err != nil {
		return fmt.Errorf("read csv: %w", err)
	}
	size := max(f.BatchSize, 1)
	b := pubsubio.Batch{Messages: make([]pubsubio.Message, 0, size)}
	for {
		var a event.Adjustment
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		line := strconv.Itoa(cr.line())
		m := pubsubio.Message{ID: f.URI + ":" + line}
		var rowErr *event.RowError
		var inv *event.Invalid
		switch {
		case errors.As(err, &rowErr):
			m.Data = []byte(rowErr.Raw)
			m.Attributes = map[string]string{AttrCSVError: rowErr.Err.Code, AttrCSVDetail: rowErr.Error(), AttrCSVLine: line}
		case errors.As(err, &inv):
			// Marked here because the JSON form cannot carry every defect
			// (a missing event_time would read as 1970).
			m.Data, _ = event.MarshalJSON(&a)
			m.Attributes = map[string]string{AttrCSVError: inv.Code, AttrCSVDetail: inv.Error(), AttrCSVLine: line}
		case err != nil:
			return fmt.Errorf("read csv %s: %w", f.URI, err)
		default:
			data, err := event.MarshalJSON(&a)
			if err != nil {
				return fmt.Errorf("read csv %s:%s: encode: %w", f.URI, line, err)
			}
			m.Data = data
			m.Attributes = map[string]string{event.AttrEncoding: event.EncodingJSON, AttrCSVLine: line}
		}
		b.Messages = append(b.Messages, m)
		if len(b.Messages) == size {
			emit(b)
			b = pubsubio.Batch{Messages: make([]pubsubio.Message, 0, size)}
		}
	}
	if len(b.Messages) > 0 {
		emit(b)
	}
	return nil
}
