package transforms

import (
	"context"
	"encoding/json"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/protobuf/proto"
)

func init() {
	register.DoFn2x1[context.Context, []byte, error](&publishFn{})
}

// WritePubSub is a composite transform that publishes messages to a topic
// with the Pub/Sub client (which honours PUBSUB_EMULATOR_HOST). It expects a
// PCollection of []byte, each a marshaled pubsubpb.PubsubMessage (the form
// Dataflow's native write takes too), and returns nothing. A bundle succeeds
// only once every message of it is published: delivery is at-least-once.
func WritePubSub(s beam.Scope, project, topic string, msgs beam.PCollection) {
	s = s.Scope("WritePubSub")
	beam.ParDo0(s, &publishFn{Project: project, Topic: topic}, msgs)
}

type publishFn struct {
	Project string
	Topic   string

	client  *pubsub.Client
	pub     *pubsub.Publisher
	pending []*pubsub.PublishResult
}

func (f *publishFn) Setup(ctx context.Context) error {
	c, err := pubsub.NewClient(ctx, f.Project)
	if err != nil {
		return fmt.Errorf("pubsub.NewClient: %w", err)
	}
	f.client = c
	f.pub = c.Publisher(f.Topic)
	return nil
}

func (f *publishFn) ProcessElement(ctx context.Context, raw []byte) error {
	var m pubsubpb.PubsubMessage
	if err := proto.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("publish to %s: decode message: %w", f.Topic, err)
	}
	f.pending = append(f.pending, f.pub.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey}))
	return nil
}

func (f *publishFn) FinishBundle(ctx context.Context) error {
	f.pub.Flush()
	defer func() { f.pending = f.pending[:0] }()
	for _, r := range f.pending {
		if _, err := r.Get(ctx); err != nil {
			return fmt.Errorf("publish to %s: %w", f.Topic, err)
		}
	}
	return nil
}

func (f *publishFn) Teardown() error {
	if f.pub != nil {
		f.pub.Stop()
	}
	if f.client != nil {
		return f.client.Close()
	}
	return nil
}

func newPubSubClient(ctx context.Context, project string) (*pubsub.Client, error) {
	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	return c, nil
}

// attrsFromJSON is the inverse of AttributesJSON.
func attrsFromJSON(s string) map[string]string {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil
	}
	return m
}
