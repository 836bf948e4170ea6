package pubsubio

import (
	"context"
	"testing"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
)

// localPubSub starts the local Pub/Sub with opts, points this test's
// clients at it (PUBSUB_EMULATOR_HOST) and returns a client of project;
// both are closed when the test ends.
func localPubSub(t *testing.T, opts pubsubemu.Options, project string) *pubsub.Client {
	t.Helper()
	srv, err := pubsubemu.Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr())
	client, err := pubsub.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// createTopicSub creates topic and a subscription sub of it with the ack
// deadline given, on client's server.
func createTopicSub(t *testing.T, client *pubsub.Client, topic, sub string, ackDeadlineSeconds int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	createSub(t, client, topic, sub, ackDeadlineSeconds)
}

// createSub creates a subscription sub of topic with the ack deadline given.
func createSub(t *testing.T, client *pubsub.Client, topic, sub string, ackDeadlineSeconds int32) {
	t.Helper()
	if _, err := client.SubscriptionAdminClient.CreateSubscription(context.Background(), &pubsubpb.Subscription{
		Name: sub, Topic: topic, AckDeadlineSeconds: ackDeadlineSeconds}); err != nil {
		t.Fatal(err)
	}
}

// publishCopies publishes requests Publish requests of perRequest messages
// each, every one holding payload, to topic.
func publishCopies(t *testing.T, client *pubsub.Client, topic string, payload []byte, requests, perRequest int) {
	t.Helper()
	for range requests {
		msgs := make([]*pubsubpb.PubsubMessage, perRequest)
		for j := range msgs {
			msgs[j] = &pubsubpb.PubsubMessage{Data: payload}
		}
		if _, err := client.TopicAdminClient.Publish(context.Background(), &pubsubpb.PublishRequest{Topic: topic, Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
}
