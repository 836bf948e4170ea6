package pubsubemu

import (
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/linkedin/goavro/v2"
	"google.golang.org/grpc/codes"
)

const avroV1 = `{"type":"record","name":"Adjustment","namespace":"test.v1","fields":[
 {"name":"event_id","type":"string"},
 {"name":"sku","type":"string"},
 {"name":"quantity","type":"long"},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["ADJUST","COUNT"]}}]}`

// avroV2 adds a field without a default: data without it matches only v1.
const avroV2 = `{"type":"record","name":"Adjustment","namespace":"test.v1","fields":[
 {"name":"event_id","type":"string"},
 {"name":"sku","type":"string"},
 {"name":"quantity","type":"long"},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["ADJUST","COUNT"]}},
 {"name":"source","type":"string"}]}`

// TestAvroSchemaJSONAndBinary: AVRO schemas with revisions enforced on
// publish in the Avro JSON and binary encodings, through the official client.
func TestAvroSchemaJSONAndBinary(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	sc := newSchemaClient(t, b.addr)
	ctx := testCtx(t)

	_, err := sc.CreateSchema(ctx, &pb.CreateSchemaRequest{Parent: project, SchemaId: "broken", Schema: &pb.Schema{Type: pb.Schema_AVRO, Definition: `{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}`}})
	wantCode(t, "CreateSchema of a bad AVRO definition", err, codes.InvalidArgument)
	v1, err := sc.CreateSchema(ctx, &pb.CreateSchemaRequest{Parent: project, SchemaId: "adjustment", Schema: &pb.Schema{Type: pb.Schema_AVRO, Definition: avroV1}})
	if err != nil {
		t.Fatalf("CreateSchema AVRO: %v", err)
	}
	v2, err := sc.CommitSchema(ctx, &pb.CommitSchemaRequest{Name: v1.Name, Schema: &pb.Schema{Type: pb.Schema_AVRO, Definition: avroV2}})
	if err != nil {
		t.Fatalf("CommitSchema AVRO: %v", err)
	}

	mustTopic(t, c, &pb.Topic{Name: topicName("avro-json"), SchemaSettings: &pb.SchemaSettings{Schema: v1.Name, Encoding: pb.Encoding_JSON}})
	mustSub(t, c, &pb.Subscription{Name: subName("avro-json-sub"), Topic: topicName("avro-json")})
	good := map[string]string{
		`{"event_id":"e1","sku":"S","quantity":3,"kind":"ADJUST"}`:                             v1.RevisionId,
		`{"event_id":"e2","sku":"S","quantity":-3,"note":{"string":"hi"},"kind":"COUNT"}`:      v1.RevisionId,
		`{"event_id":"e3","sku":"S","quantity":3,"note":null,"kind":"ADJUST","source":"shop"}`: v2.RevisionId,
	}
	for data := range good {
		if err := publishErr(t, c, topicName("avro-json"), &pubsub.Message{Data: []byte(data)}); err != nil {
			t.Errorf("publish %s: %v", data, err)
		}
	}
	for _, m := range pullUntil(t, c, subName("avro-json-sub"), len(good), 5*time.Second) {
		a := m.Message.Attributes
		if want := good[string(m.Message.Data)]; a[attrSchemaRevision] != want || a[attrSchemaEncoding] != "JSON" || a[attrSchemaName] != v1.Name {
			t.Errorf("%s carries %v, want revision %s", m.Message.Data, a, want)
		}
	}
	for _, data := range []string{
		`{"event_id":"e1","sku":"S","quantity":"3","kind":"ADJUST"}`,            // string for a long
		`{"event_id":"e1","sku":"S","quantity":3,"note":"hi","kind":"ADJUST"}`,  // union value not wrapped
		`{"event_id":"e1","sku":"S","quantity":3,"kind":"SELL"}`,                // not an enum symbol
		`{"event_id":"e1","sku":"S","kind":"ADJUST"}`,                           // required field missing
		`{"event_id":"e1","sku":"S","quantity":3,"kind":"ADJUST","extra":true}`, // unknown field
		`{"event_id":"e1","sku":"S","quantity":3.5,"kind":"ADJUST"}`,            // not an integer
		`not json`,
	} {
		err := publishErr(t, c, topicName("avro-json"), &pubsub.Message{Data: []byte(data)})
		wantCode(t, "publish "+data, err, codes.InvalidArgument)
	}

	// BINARY, bound to revision 2 only.
	mustTopic(t, c, &pb.Topic{Name: topicName("avro-bin"), SchemaSettings: &pb.SchemaSettings{Schema: v1.Name, Encoding: pb.Encoding_BINARY, FirstRevisionId: v2.RevisionId}})
	sch2, err := goavro.NewCodec(avroV2)
	if err != nil {
		t.Fatal(err)
	}
	datum := map[string]any{"event_id": "e9", "sku": "S", "quantity": int64(4), "note": nil, "kind": "COUNT", "source": "shop"}
	bin, err := sch2.BinaryFromNative(nil, datum)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishErr(t, c, topicName("avro-bin"), &pubsub.Message{Data: bin}); err != nil {
		t.Fatalf("publish Avro binary: %v", err)
	}
	wantCode(t, "binary with a trailing byte", publishErr(t, c, topicName("avro-bin"), &pubsub.Message{Data: append(bin, 0)}), codes.InvalidArgument)
	wantCode(t, "truncated binary", publishErr(t, c, topicName("avro-bin"), &pubsub.Message{Data: bin[:len(bin)-2]}), codes.InvalidArgument)

	// ValidateMessage against a named schema revision and an inline schema.
	if _, err := sc.ValidateMessage(ctx, &pb.ValidateMessageRequest{Parent: project, SchemaSpec: &pb.ValidateMessageRequest_Name{Name: v1.Name + "@" + v2.RevisionId}, Encoding: pb.Encoding_BINARY, Message: bin}); err != nil {
		t.Errorf("ValidateMessage binary: %v", err)
	}
	_, err = sc.ValidateMessage(ctx, &pb.ValidateMessageRequest{Parent: project, SchemaSpec: &pb.ValidateMessageRequest_Schema{Schema: &pb.Schema{Type: pb.Schema_AVRO, Definition: avroV1}}, Encoding: pb.Encoding_JSON, Message: []byte(`{"sku":1}`)})
	wantCode(t, "ValidateMessage of bad JSON", err, codes.InvalidArgument)
	if _, err := sc.ValidateSchema(ctx, &pb.ValidateSchemaRequest{Parent: project, Schema: &pb.Schema{Type: pb.Schema_AVRO, Definition: avroV2}}); err != nil {
		t.Errorf("ValidateSchema AVRO: %v", err)
	}
}
