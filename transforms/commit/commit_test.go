package commit_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/internal/testkit/badinput"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/local" // the tests' warehouse directories
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func TestMain(m *testing.M) { ptest.Main(m) }

const project = "test-project"

// localPubSub starts the local Pub/Sub with the product's topics and
// returns its admin.
func localPubSub(t *testing.T) *broker.Admin {
	t.Helper()
	srv, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr())
	a, err := broker.NewAdmin(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Setup(context.Background(), broker.SetupConfig{Project: project}); err != nil {
		t.Fatal(err)
	}
	return a
}

// oversized is the dead-letter row of a 9 MB payload, as the stream's
// decoder makes it: the whole payload, not yet bounded.
func oversized() warehouse.DeadLetterRow {
	return warehouse.DeadLetterRow{Reason: event.CodeTooLarge, Error: "payload is 9000000 bytes",
		Payload: bytes.Repeat([]byte(" "), 9_000_000), Attributes: `{"googclient_schemaencoding":"JSON"}`,
		MessageID: "m-9mb", Stage: warehouse.StageStream, Origin: "pubsub", DeadLetteredAt: time.Now().UTC()}
}

// writeCommits runs Write over commits into a fresh warehouse and
// returns it and the job's counter of dropped dead letters.
func writeCommits(t *testing.T, deadLetterTopic string, commits ...commit.Commit) (string, int64) {
	t.Helper()
	dir, counters := runWrite(t, commit.Options{Project: project, DeadLetterTopic: deadLetterTopic}, commits...)
	return dir, counters[commit.MetricDeadLettersDropped]
}

// runWrite runs Write with o over commits into a fresh warehouse and
// returns it and the job's stream counters by name.
func runWrite(t *testing.T, o commit.Options, commits ...commit.Commit) (string, map[string]int64) {
	t.Helper()
	dir := t.TempDir()
	if _, err := warehouse.Setup(context.Background(), dir, "", false); err != nil {
		t.Fatal(err)
	}
	p, s := beam.NewPipelineWithRoot()
	in := beam.CreateList(s, commits)
	o.Warehouse = dir
	commit.Write(s, in, o)
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	counters := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() == commit.MetricNamespace {
			counters[c.Name()] += c.Result()
		}
	}
	return dir, counters
}

// storedDeadLetter returns the payload_bytes and payload_sha256 of the one
// dead_letters row of dir.
func storedDeadLetter(t *testing.T, dir string) (int64, string) {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), dir, `SELECT payload_bytes, payload_sha256 FROM dead_letters`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d dead_letters rows, want 1", len(rows))
	}
	return rows[0]["payload_bytes"].(int64), rows[0]["payload_sha256"].(string)
}

// TestWriteCommitsPublishesOversizedDeadLetter: the dead letter of a 9 MB
// payload (12 MB in base64, past Pub/Sub's 10 MB) reaches the dead-letter
// topic of the local Pub/Sub, which enforces Pub/Sub's limits, cut, with
// the size and hash of the whole; the row is stored the same way.
func TestWriteCommitsPublishesOversizedDeadLetter(t *testing.T) {
	a := localPubSub(t)
	row := oversized()
	dir, dropped := writeCommits(t, names.DeadLetterTopic, commit.Commit{DeadLetters: []warehouse.DeadLetterRow{row}})
	if dropped != 0 {
		t.Errorf("%d dead letters dropped, want 0", dropped)
	}
	wantSum := badinput.PayloadSHA256(row.Payload)
	if n, sum := storedDeadLetter(t, dir); n != 9_000_000 || sum != wantSum {
		t.Errorf("dead_letters row: payload_bytes %d payload_sha256 %s, want 9000000 and %s", n, sum, wantSum)
	}
	ctx := context.Background()
	resp, err := a.Client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
		Subscription: pubsubio.SubscriptionPath(project, names.DeadLetterSubscription), MaxMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetReceivedMessages()) != 1 {
		t.Fatalf("%d messages on the dead-letter topic, want 1", len(resp.GetReceivedMessages()))
	}
	m := resp.GetReceivedMessages()[0].GetMessage()
	dl, err := badinput.CheckDeadLetter(m.GetData(), m.GetAttributes())
	if err != nil {
		t.Fatal(err)
	}
	if dl.GetPayloadBytes() != 9_000_000 || dl.GetPayloadSha256() != wantSum || len(dl.GetPayload()) != event.MaxDeadLetterPayload {
		t.Errorf("envelope: payload_bytes %d payload_sha256 %s payload %d bytes", dl.GetPayloadBytes(), dl.GetPayloadSha256(), len(dl.GetPayload()))
	}
}

// TestWriteCommitsDropsRefusedDeadLetter: a dead letter that Pub/Sub
// refuses for good (here the dead-letter topic has a schema it does not
// match, so the local Pub/Sub answers INVALID_ARGUMENT) is logged and
// counted, and the batch is stored all the same instead of failing on
// every retry.
func TestWriteCommitsDropsRefusedDeadLetter(t *testing.T) {
	a := localPubSub(t)
	ctx := context.Background()
	refusing := "dead-letter-with-a-schema"
	if _, err := a.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: pubsubio.TopicPath(project, refusing),
		SchemaSettings: &pubsubpb.SchemaSettings{Schema: "projects/" + project + "/schemas/" + names.Schema, Encoding: pubsubpb.Encoding_JSON}}); err != nil {
		t.Fatal(err)
	}
	adj := warehouse.AdjustmentRow{EventID: "after-the-refused-one", SKU: "SKU-1", LocationID: "STORE-1", Reason: event.Received.String(),
		Quantity: 1, EventTime: time.Now().UTC().Add(-time.Hour), IngestTime: time.Now().UTC(), Status: warehouse.StatusApplied}
	dir, dropped := writeCommits(t, refusing, commit.Commit{DeadLetters: []warehouse.DeadLetterRow{oversized()}},
		commit.Commit{Adjustments: []warehouse.AdjustmentRow{adj}})
	if dropped != 1 {
		t.Errorf("%s = %d, want 1", commit.MetricDeadLettersDropped, dropped)
	}
	if n, _ := storedDeadLetter(t, dir); n != 9_000_000 {
		t.Errorf("dead_letters row: payload_bytes %d, want 9000000", n)
	}
	rows, err := warehouse.QueryRows(ctx, dir, `SELECT event_id FROM adjustments`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["event_id"] != adj.EventID {
		t.Errorf("adjustments %v, want the one after the refused dead letter", rows)
	}
}

// TestWriteCommitsCountsAcks: the sink counts as acked only the messages
// whose Acknowledge the local Pub/Sub accepted, and the others as
// ack_failed, storing the rows either way. Ack ids the server never
// handed out are refused (INVALID_ARGUMENT).
func TestWriteCommitsCountsAcks(t *testing.T) {
	a := localPubSub(t)
	ctx := context.Background()
	topic, sub := pubsubio.TopicPath(project, "acks"), pubsubio.SubscriptionPath(project, "acks")
	if _, err := a.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: sub, Topic: topic, AckDeadlineSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: topic,
		Messages: []*pubsubpb.PubsubMessage{{Data: []byte("1")}, {Data: []byte("2")}, {Data: []byte("3")}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := a.Client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 10})
	if err != nil || len(resp.GetReceivedMessages()) != 3 {
		t.Fatalf("pull: %d messages, %v; want 3", len(resp.GetReceivedMessages()), err)
	}
	var ids []string
	for _, rm := range resp.GetReceivedMessages() {
		ids = append(ids, rm.GetAckId())
	}
	adj := warehouse.AdjustmentRow{EventID: "e-1", SKU: "SKU-1", LocationID: "STORE-1", Reason: event.Received.String(),
		Quantity: 1, EventTime: time.Now().UTC().Add(-time.Hour), IngestTime: time.Now().UTC(), Status: warehouse.StatusApplied}
	o := commit.Options{Project: project, Subscription: "acks"}

	_, got := runWrite(t, o, commit.Commit{Adjustments: []warehouse.AdjustmentRow{adj}, Acks: ids})
	if got[commit.MetricAcked] != 3 || got[commit.MetricAckFailed] != 0 {
		t.Errorf("acks the server took: %s %d, %s %d; want 3 and 0", commit.MetricAcked, got[commit.MetricAcked],
			commit.MetricAckFailed, got[commit.MetricAckFailed])
	}

	dir, got := runWrite(t, o, commit.Commit{Adjustments: []warehouse.AdjustmentRow{adj}, Acks: []string{"not-an-ack-id", "neither"}})
	if got[commit.MetricAcked] != 0 || got[commit.MetricAckFailed] != 2 {
		t.Errorf("acks the server refused: %s %d, %s %d; want 0 and 2", commit.MetricAcked, got[commit.MetricAcked],
			commit.MetricAckFailed, got[commit.MetricAckFailed])
	}
	rows, err := warehouse.QueryRows(ctx, dir, `SELECT event_id FROM adjustments`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Errorf("%d adjustments stored with the refused acks, want 1", len(rows))
	}
}
