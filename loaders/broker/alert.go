package broker

import (
	"fmt"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// DecodeAlert decodes a message of the low-stock-alerts topic by its
// schema encoding attribute: BINARY, or JSON (the default).
func DecodeAlert(m *pubsubpb.PubsubMessage) (*inventoryv1.LowStockAlert, error) {
	a := &inventoryv1.LowStockAlert{}
	var err error
	if m.GetAttributes()[event.AttrEncoding] == event.EncodingBinary {
		err = proto.Unmarshal(m.GetData(), a)
	} else {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(m.GetData(), a)
	}
	if err != nil {
		return nil, fmt.Errorf("message %s is not a LowStockAlert: %w", m.GetMessageId(), err)
	}
	return a, nil
}
