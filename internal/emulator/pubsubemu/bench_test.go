package pubsubemu

import (
	"context"
	"testing"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// BenchmarkValidateJSON measures schema validation of one adjustment-sized JSON message.
func BenchmarkValidateJSON(b *testing.B) {
	desc, err := compileSchema(context.Background(), pb.Schema_PROTOCOL_BUFFER, schemaV2)
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"event_id":"ev-00000001","sku":"SKU-0001","quantity":"-1","source":"pos"}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := validateData(desc, pb.Encoding_JSON, data); err != nil {
			b.Fatal(err)
		}
	}
}
