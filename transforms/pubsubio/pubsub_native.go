package pubsubio

import (
	"fmt"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/typex"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/protox"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/reflectx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/protobuf/proto"
)

// The URNs of the runner-native Pub/Sub transforms, which only Dataflow
// implements. (Beam's pubsubio emits the same, but does not build next to
// cloud.google.com/go/pubsub/v2; upstream report:
// docs/beam-notes.md#upstream-issues-ready-to-file, item 7.)
const (
	ReadURN  = "beam:transform:pubsub_read:v1"
	WriteURN = "beam:transform:pubsub_write:v1"
)

func init() {
	register.Function2x1(nativeToBatch)
}

// NativeReadOptions configures ReadNative.
type NativeReadOptions struct {
	// IDAttribute, if set, is the attribute Dataflow deduplicates on.
	IDAttribute string
	// TimestampAttribute, if set, is the attribute Dataflow takes element
	// timestamps and the watermark from (else the publish time).
	TimestampAttribute string
}

// ReadNative is a composite transform that reads a subscription with
// the runner's native Pub/Sub source (Dataflow). It returns an unbounded
// PCollection of Batch, one message each: on Dataflow the per-element cost
// is low, and acking after commit is the service's.
func ReadNative(s beam.Scope, project, subscription string, o NativeReadOptions) beam.PCollection {
	s = s.Scope("pubsubio.ReadNative")
	payload := &pipepb.PubSubReadPayload{
		Subscription:       SubscriptionPath(project, subscription),
		IdAttribute:        o.IDAttribute,
		TimestampAttribute: o.TimestampAttribute,
		WithAttributes:     true,
	}
	out := beam.External(s, ReadURN, protox.MustEncode(payload), nil,
		[]beam.FullType{typex.New(reflectx.ByteSlice)}, false)
	return beam.ParDo(s, nativeToBatch, out[0])
}

func nativeToBatch(raw []byte, emit func(Batch)) error {
	var m pubsubpb.PubsubMessage
	if err := proto.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("decode native pubsub message: %w", err)
	}
	var pt int64
	if m.PublishTime != nil {
		pt = m.PublishTime.AsTime().UnixMicro()
	}
	emit(Batch{Messages: []Message{{ID: m.MessageId, Data: m.Data, Attributes: m.Attributes, PublishTime: pt}}})
	return nil
}

// WriteNative is a composite transform that publishes to a topic with
// the runner's native Pub/Sub sink (Dataflow). It expects a PCollection of
// []byte, each a marshaled pubsubpb.PubsubMessage.
func WriteNative(s beam.Scope, project, topic string, msgs beam.PCollection) {
	s = s.Scope("pubsubio.WriteNative")
	payload := &pipepb.PubSubWritePayload{Topic: TopicPath(project, topic)}
	beam.External(s, WriteURN, protox.MustEncode(payload), []beam.PCollection{msgs}, nil, false)
}
