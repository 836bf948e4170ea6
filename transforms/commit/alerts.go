package commit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/warehouse"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	register.DoFn2x1[warehouse.AlertRow, func([]byte), error](&alertMessageFn{})
	register.DoFn3x0[context.Context, warehouse.DeadLetterRow, func([]byte)](&deadLetterMessageFn{})
	register.Emitter1[[]byte]()
}

// AlertMessages is a composite transform that turns alert rows into Pub/Sub
// messages for the low-stock-alerts topic: a LowStockAlert in the topic's
// schema encoding ("JSON" or "BINARY"), with the attributes alert_id, sku,
// location_id and severity. It expects a PCollection of warehouse.AlertRow
// and returns a PCollection of []byte, each a marshaled
// pubsubpb.PubsubMessage (for Dataflow's native write).
func AlertMessages(s beam.Scope, alerts beam.PCollection, encoding string) beam.PCollection {
	s = s.Scope("commit.AlertMessages")
	if encoding != event.EncodingJSON && encoding != event.EncodingBinary {
		panic(fmt.Sprintf("commit.AlertMessages: encoding %q is neither JSON nor BINARY", encoding))
	}
	return beam.ParDo(s, &alertMessageFn{Encoding: encoding}, alerts)
}

type alertMessageFn struct {
	Encoding string
}

func (f *alertMessageFn) ProcessElement(r warehouse.AlertRow, emit func([]byte)) error {
	data, attrs, err := alertMessage(r, f.Encoding)
	if err != nil {
		return err
	}
	return emitMessage(emit, data, attrs)
}

// alertMessage returns the data and attributes of the Pub/Sub message of an
// alert in the alert topic's encoding.
func alertMessage(r warehouse.AlertRow, encoding string) ([]byte, map[string]string, error) {
	data, err := encodeAlert(AlertProto(r), encoding)
	if err != nil {
		return nil, nil, err
	}
	return data, map[string]string{
		"alert_id": r.AlertID, "sku": r.SKU, "location_id": r.LocationID, "severity": r.Severity}, nil
}

// AlertProto converts an alert row to the wire message. A previous severity
// of OK is RECOVERED in the proto enum; none (a key first seen) is
// SEVERITY_UNSPECIFIED.
func AlertProto(r warehouse.AlertRow) *inventoryv1.LowStockAlert {
	return &inventoryv1.LowStockAlert{
		AlertId:          r.AlertID,
		Sku:              r.SKU,
		LocationId:       r.LocationID,
		Severity:         severityProto(r.Severity),
		OnHand:           r.OnHand,
		Threshold:        r.Threshold,
		EventId:          r.EventID,
		EventTime:        r.EventTime.UTC().Format(time.RFC3339Nano),
		AlertTime:        r.AlertTime.UTC().Format(time.RFC3339Nano),
		PreviousSeverity: severityProto(r.PreviousSeverity),
	}
}

func severityProto(s string) inventoryv1.LowStockAlert_Severity {
	switch s {
	case "LOW":
		return inventoryv1.LowStockAlert_LOW
	case "OUT":
		return inventoryv1.LowStockAlert_OUT
	case "OK", "RECOVERED":
		return inventoryv1.LowStockAlert_RECOVERED
	}
	return inventoryv1.LowStockAlert_SEVERITY_UNSPECIFIED
}

// encodeAlert encodes an alert in a Pub/Sub schema encoding.
func encodeAlert(a *inventoryv1.LowStockAlert, encoding string) ([]byte, error) {
	var data []byte
	var err error
	if encoding == event.EncodingBinary {
		data, err = proto.Marshal(a)
	} else {
		data, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(a)
	}
	if err != nil {
		return nil, fmt.Errorf("encode alert %s: %w", a.GetAlertId(), err)
	}
	return data, nil
}

// DeadLetterMessages is a composite transform that turns dead-letter rows
// into messages for the dead-letter topic: a DeadLetter in JSON, with the
// attributes of event.DeadLetterAttrKeys, cut to Pub/Sub's limits
// (event.DeadLetterMessage). It expects a PCollection of
// warehouse.DeadLetterRow and returns a PCollection of []byte, each a
// marshaled pubsubpb.PubsubMessage (for Dataflow's native write). A row
// whose message cannot be built is logged and counted
// (MetricDeadLettersDropped), never an error that would fail its bundle on
// every retry.
func DeadLetterMessages(s beam.Scope, rows beam.PCollection) beam.PCollection {
	s = s.Scope("commit.DeadLetterMessages")
	return beam.ParDo(s, &deadLetterMessageFn{}, rows)
}

type deadLetterMessageFn struct {
	dropped beam.Counter
}

func (f *deadLetterMessageFn) Setup() {
	f.dropped = beam.NewCounter(MetricNamespace, MetricDeadLettersDropped)
}

func (f *deadLetterMessageFn) ProcessElement(ctx context.Context, r warehouse.DeadLetterRow, emit func([]byte)) {
	data, attrs, err := deadLetterMessage(r)
	if err == nil {
		err = emitMessage(emit, data, attrs)
	}
	if err != nil {
		logDropped(ctx, r, err)
		f.dropped.Inc(ctx, 1)
	}
}

// deadLetterMessage returns the data and attributes of the dead-letter
// topic's message of a dead-letter row (event.DeadLetterMessage, which cuts
// it to Pub/Sub's limits, keeping the size and SHA-256 of the payload).
func deadLetterMessage(r warehouse.DeadLetterRow) ([]byte, map[string]string, error) {
	dl := &inventoryv1.DeadLetter{
		Reason:         r.Reason,
		Error:          r.Error,
		Payload:        r.Payload,
		PayloadBytes:   r.PayloadBytes,
		PayloadSha256:  r.PayloadSHA256,
		Attributes:     attrsFromJSON(r.Attributes),
		MessageId:      r.MessageID,
		Stage:          r.Stage,
		Origin:         r.Origin,
		DeadLetteredAt: r.DeadLetteredAt.UTC().Format(time.RFC3339Nano),
	}
	if r.PublishTime != nil {
		dl.PublishTime = r.PublishTime.UTC().Format(time.RFC3339Nano)
	}
	return event.DeadLetterMessage(dl)
}

// logDropped logs a dead letter left off the topic, with what identifies
// its payload: the size and SHA-256 of the whole.
func logDropped(ctx context.Context, r warehouse.DeadLetterRow, err error) {
	warehouse.BoundPayload(&r)
	slog.ErrorContext(ctx, "commit: dead letter refused; left off the dead-letter topic, its message acked (the dead_letters row keeps it)",
		"reason", r.Reason, "message_id", r.MessageID, "origin", r.Origin,
		"payload_bytes", r.PayloadBytes, "payload_sha256", r.PayloadSHA256, "err", err)
}

func emitMessage(emit func([]byte), data []byte, attrs map[string]string) error {
	raw, err := proto.Marshal(&pubsubpb.PubsubMessage{Data: data, Attributes: attrs})
	if err != nil {
		return fmt.Errorf("encode pubsub message: %w", err)
	}
	emit(raw)
	return nil
}

// LookupTopicEncoding returns the schema encoding of a topic ("JSON" or
// "BINARY"), or "JSON" if it has no schema.
func LookupTopicEncoding(ctx context.Context, project, topic string) (string, error) {
	c, err := pubsubio.NewClient(ctx, project)
	if err != nil {
		return "", err
	}
	defer c.Close()
	t, err := c.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: pubsubio.TopicPath(project, topic)})
	if err != nil {
		return "", fmt.Errorf("pubsub GetTopic %s: %w", topic, err)
	}
	if t.GetSchemaSettings().GetEncoding() == pubsubpb.Encoding_BINARY {
		return event.EncodingBinary, nil
	}
	return event.EncodingJSON, nil
}

// attrsFromJSON is the inverse of stock.AttributesJSON.
func attrsFromJSON(s string) map[string]string {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil
	}
	return m
}
