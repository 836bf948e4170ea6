package event_test

import (
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

func TestDeadLetterMessage(t *testing.T) {
	bad := "bad \xff byte"
	data, attrs, err := event.DeadLetterMessage(&inventoryv1.DeadLetter{
		Reason: event.CodeWrongSign, Error: "quantity " + bad, Payload: []byte("raw \xff payload"),
		Attributes: map[string]string{"k\xfe": bad}, Stage: event.StageStream, Origin: "pubsub",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(attrs)); !slices.Equal(got, event.DeadLetterAttrKeys) {
		t.Errorf("attribute keys %v, want %v", got, event.DeadLetterAttrKeys)
	}
	if attrs[event.AttrDeadLetterReason] != event.CodeWrongSign || attrs[event.AttrDeadLetterStage] != event.StageStream ||
		attrs[event.AttrDeadLetterOrigin] != "pubsub" {
		t.Errorf("attributes %v", attrs)
	}
	var dl inventoryv1.DeadLetter
	if err := protojson.Unmarshal(data, &dl); err != nil {
		t.Fatalf("envelope %s: %v", data, err)
	}
	if string(dl.GetPayload()) != "raw \xff payload" {
		t.Errorf("payload %q: want the bytes unchanged", dl.GetPayload())
	}
	if dl.GetError() != "quantity bad \uFFFD byte" || dl.GetAttributes()["k\uFFFD"] != "bad \uFFFD byte" {
		t.Errorf("error %q attributes %q: want invalid UTF-8 replaced", dl.GetError(), dl.GetAttributes())
	}
}
