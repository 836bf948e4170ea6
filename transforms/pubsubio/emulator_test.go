package pubsubio

import (
	"context"
	"testing"

	"cloud.google.com/go/pubsub/v2"

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
