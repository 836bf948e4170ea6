package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/badinput"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/csvsrc"
	"github.com/inventory-events/inventory/transforms/pubsubio"
	"github.com/inventory-events/inventory/transforms/stock"
)

const corpusDir = "../../testdata/badinput"

// TestCorpusThroughStream sends every message of the bad-input corpus to
// the running job through a topic without a schema (so that what a schema
// would refuse at publish reaches the job too), plus one valid event, and
// checks that each bad one is in dead_letters and on the dead-letter topic
// (within Pub/Sub's limits, a 9 MB payload included) with its specific
// reason, and the valid one is applied. The cases Pub/Sub refuses at
// publish (an attribute past its limits) are refused by the local Pub/Sub
// too.
func TestCorpusThroughStream(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	st := newStack(t)
	ctx := context.Background()
	raw, rawSub := "projects/"+project+"/topics/raw-adjustments", "projects/"+project+"/subscriptions/raw-adjustments-sub"
	if _, err := st.admin.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: raw}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.admin.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: rawSub, Topic: raw, AckDeadlineSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	cases, err := badinput.Cases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	pub := st.admin.Client.Publisher(raw)
	published, err := badinput.PublishAll(ctx, pub, corpusDir, cases) // payload's SHA-256 -> reason
	if err != nil {
		t.Fatal(err)
	}
	var refuses []string
	for _, c := range cases {
		if c.PubSubRefuses {
			refuses = append(refuses, c.Name)
		}
	}
	if !slices.Equal(published.Refused, refuses) {
		t.Fatalf("the local Pub/Sub refused %v, want %v (as Pub/Sub does)", published.Refused, refuses)
	}
	want := published.Want
	if len(want) == 0 {
		t.Fatal("nothing published")
	}
	good := event.Adjustment{EventID: "corpus-good", SKU: "SKU-00001", LocationID: "STORE-001", Reason: event.Received,
		Quantity: 5, EventTime: time.Now().Add(-time.Hour).UnixMicro()}
	data, err := event.MarshalJSON(&good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingJSON}}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	pub.Stop()

	cfg := st.config()
	cfg.Subscription = rawSub
	j := startJob(t, cfg)
	defer j.stop(t)
	waitFor(t, 90*time.Second, "every case stored", func() (bool, string) {
		n := queryInt(t, st.warehouse, `SELECT count(DISTINCT message_id) AS n FROM dead_letters`)
		a := queryInt(t, st.warehouse, `SELECT count(*) AS n FROM adjustments`)
		return n >= int64(len(want)) && a >= 1, fmt.Sprintf("%d of %d dead letters, %d of 1 adjustments", n, len(want), a)
	})
	rows, err := warehouse.QueryRows(ctx, st.warehouse, `SELECT reason, payload, payload_sha256, stage, origin FROM dead_letters`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) {
		t.Errorf("%d dead-letter rows, want %d", len(rows), len(want))
	}
	// Keyed by the payload's SHA-256: the table keeps large payloads cut
	// to warehouse.MaxPayloadBytes, with the original's hash.
	got := map[string]string{}
	for _, r := range rows {
		sum, _ := r["payload_sha256"].(string)
		if sum == "" { // an empty payload is stored as it is
			payload, _ := r["payload"].([]byte)
			h := sha256.Sum256(payload)
			sum = hex.EncodeToString(h[:])
		}
		got[sum] = r["reason"].(string)
		if r["stage"] != warehouse.StageStream || r["origin"] != stock.OriginPubSub {
			t.Errorf("dead letter %v: want stage %s origin %s", r, warehouse.StageStream, stock.OriginPubSub)
		}
	}
	for _, c := range cases {
		if c.PubSubRefuses {
			continue
		}
		data, err := c.Payload(corpusDir)
		if err != nil {
			t.Fatal(err)
		}
		if r := got[badinput.PayloadSHA256(data)]; r != c.Reason {
			t.Errorf("%s: dead-letter reason %q, want %q", c.Name, r, c.Reason)
		}
	}
	if n := queryInt(t, st.warehouse, `SELECT count(*) AS n FROM adjustments WHERE event_id = 'corpus-good' AND status = 'APPLIED'`); n != 1 {
		t.Errorf("the valid event: %d APPLIED rows, want 1", n)
	}
	// The dead-letter topic carries the same reasons.
	topic := map[string]string{}
	waitFor(t, 30*time.Second, "dead letters on the topic", func() (bool, string) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := st.admin.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{
			Subscription: pubsubio.SubscriptionPath(project, "inventory-dead-letter-sub"), MaxMessages: 1000})
		if err == nil {
			for _, m := range resp.GetReceivedMessages() {
				dl, err := badinput.CheckDeadLetter(m.GetMessage().GetData(), m.GetMessage().GetAttributes())
				if err != nil {
					t.Error(err)
				}
				if dl != nil {
					sum := dl.GetPayloadSha256()
					if sum == "" {
						sum = badinput.PayloadSHA256(dl.GetPayload())
					}
					topic[sum] = dl.GetReason()
				}
			}
		}
		return len(topic) >= len(want), fmt.Sprintf("%d of %d", len(topic), len(want))
	})
	for sum, reason := range want {
		if topic[sum] != reason {
			t.Errorf("payload %s on the topic: reason %q, want %q", sum, topic[sum], reason)
		}
	}
}

// TestCSVCorpusThroughStream replays each bad CSV of the corpus through the
// job (--input): every bad row is a dead letter with its reason, good rows
// are applied, and a file without the required columns fails the run with
// a clear error.
func TestCSVCorpusThroughStream(t *testing.T) {
	slowtest.Skip(t, "Prism jobs")
	cases, err := badinput.CSVCases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.File, ".csv"), func(t *testing.T) {
			dir := t.TempDir()
			p, s := beam.NewPipelineWithRoot()
			Build(s, Config{Runner: "prism", Input: c.Path(corpusDir), AlertEncoding: event.EncodingJSON, Warehouse: dir})
			UsePrismExperiments()
			pr, err := ptest.RunWithMetrics(p)
			if c.HeaderError != "" {
				if err == nil || !strings.Contains(err.Error(), c.HeaderError) {
					t.Fatalf("run: %v, want an error about the header (%q)", err, c.HeaderError)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			counts := commit.CountsOf(pr)
			if counts.Received != int64(c.Accepted+len(c.Rejected)) || !counts.Balanced() || counts.DeadLettered != int64(len(c.Rejected)) {
				t.Errorf("counters %+v: want %d received, %d dead-lettered, balanced", counts, c.Accepted+len(c.Rejected), len(c.Rejected))
			}
			rows, err := warehouse.QueryRows(context.Background(), dir, `SELECT reason, attributes, origin FROM dead_letters`)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(c.Rejected) {
				t.Fatalf("%d dead letters, want %d", len(rows), len(c.Rejected))
			}
			for _, r := range c.Rejected {
				found := false
				for _, row := range rows {
					line := fmt.Sprintf(`"%s":"%d"`, csvsrc.AttrCSVLine, r.Line)
					if row["reason"] == r.Reason && strings.Contains(row["attributes"].(string), line) && row["origin"] == stock.OriginCSV {
						found = true
					}
				}
				if !found {
					t.Errorf("line %d: no dead letter with reason %s in %v", r.Line, r.Reason, rows)
				}
			}
			if n := queryInt(t, dir, `SELECT count(*) AS n FROM adjustments WHERE status = 'APPLIED'`); n != int64(c.Accepted) {
				t.Errorf("%d applied, want %d", n, c.Accepted)
			}
		})
	}
}

// TestOversizedEventDoesNotStopStream publishes a 9 MB event (12 MB once
// base64 puts it in a dead letter, past Pub/Sub's 10 MB) and then a valid
// event to the product's topic, with the job running: the valid event is
// stored, the big one is in dead_letters and on the dead-letter topic with
// its size and hash, and the job goes on with what comes next.
func TestOversizedEventDoesNotStopStream(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	st := newStack(t)
	ctx := context.Background()
	cases, err := badinput.Cases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(cases, func(c badinput.Case) bool { return c.Name == "payload_9mb" })
	if i < 0 {
		t.Fatal("the corpus has no payload_9mb case")
	}
	big, err := cases[i].Message(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	bigSum := badinput.PayloadSHA256(big.Data)
	pub := st.admin.Client.Publisher("inventory-topic")
	defer pub.Stop()
	publishGood := func(id string) {
		t.Helper()
		good := event.Adjustment{EventID: id, SKU: "SKU-00001", LocationID: "STORE-001", Reason: event.Received,
			Quantity: 5, EventTime: time.Now().Add(-time.Hour).UnixMicro()}
		data, err := event.MarshalJSON(&good)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pub.Publish(ctx, big).Get(ctx); err != nil {
		t.Fatalf("publish 9 MB: %v (Pub/Sub takes up to 10 MB)", err)
	}
	publishGood("after-the-big-one")

	j := startJob(t, st.config())
	defer j.stop(t)
	applied := func(id string) func() (bool, string) {
		return func() (bool, string) {
			n := queryInt(t, st.warehouse, `SELECT count(*) AS n FROM adjustments WHERE event_id = '`+id+`' AND status = 'APPLIED'`)
			return n == 1, fmt.Sprintf("%d APPLIED rows of %s", n, id)
		}
	}
	waitFor(t, 90*time.Second, "the valid event after the 9 MB one", applied("after-the-big-one"))
	rows, err := warehouse.QueryRows(ctx, st.warehouse, `SELECT reason, payload_bytes, payload_sha256, octet_length(payload) AS kept FROM dead_letters`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["reason"] != event.CodeTooLarge || rows[0]["payload_bytes"] != int64(len(big.Data)) ||
		rows[0]["payload_sha256"] != bigSum || rows[0]["kept"] != int64(warehouse.MaxPayloadBytes) {
		t.Errorf("dead_letters %v, want one %s row of %d bytes, hash %s, %d bytes kept", rows, event.CodeTooLarge, len(big.Data), bigSum, warehouse.MaxPayloadBytes)
	}
	var dl *inventoryv1.DeadLetter
	waitFor(t, 30*time.Second, "the dead letter on the topic", func() (bool, string) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, err := st.admin.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{
			Subscription: pubsubio.SubscriptionPath(project, "inventory-dead-letter-sub"), MaxMessages: 10})
		for _, m := range resp.GetReceivedMessages() {
			if dl, err = badinput.CheckDeadLetter(m.GetMessage().GetData(), m.GetMessage().GetAttributes()); err != nil {
				t.Error(err)
			}
		}
		return dl != nil, fmt.Sprint(err)
	})
	if dl.GetPayloadBytes() != int64(len(big.Data)) || dl.GetPayloadSha256() != bigSum {
		t.Errorf("dead letter on the topic: payload_bytes %d payload_sha256 %s, want %d and %s", dl.GetPayloadBytes(), dl.GetPayloadSha256(), len(big.Data), bigSum)
	}
	// The job goes on.
	publishGood("later")
	waitFor(t, 60*time.Second, "an event published later", applied("later"))
}

// TestCorpusDeadLettersOnDataflowPath runs every message of the corpus
// (those Pub/Sub refuses at publish included) through the decoder and the
// dead-letter builder of the Dataflow path (commit.DeadLetterMessages, whose
// output Dataflow's native write publishes as it is), then publishes each
// built message to the local Pub/Sub, which enforces Pub/Sub's limits: every
// one is taken and carries its reason and its payload's size and hash.
func TestCorpusDeadLettersOnDataflowPath(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	st := newStack(t)
	cases, err := badinput.Cases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var b pubsubio.Batch
	want := map[string]string{}
	for i, c := range cases {
		m, err := c.Message(corpusDir)
		if err != nil {
			t.Fatal(err)
		}
		b.Messages = append(b.Messages, pubsubio.Message{ID: fmt.Sprint(i), Data: m.Data, Attributes: m.Attributes})
		want[badinput.PayloadSHA256(m.Data)] = c.Reason
	}
	p, s := beam.NewPipelineWithRoot()
	dec := stock.DecodeEvents(s, beam.Create(s, b), 1, stock.OriginPubSub)
	msgs := commit.DeadLetterMessages(s, commit.Unpack(s, dec.Rejected).DeadLetters)
	beam.ParDo0(s, &publishRawFn{Topic: pubsubio.TopicPath(project, DefaultDeadLetterTopic)}, msgs)
	UsePrismExperiments()
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Name() == commit.MetricDeadLettersDropped && c.Result() != 0 {
			t.Errorf("%s = %d, want 0", c.Name(), c.Result())
		}
	}
	got := map[string]string{}
	ctx := context.Background()
	waitFor(t, 30*time.Second, "every dead letter on the topic", func() (bool, string) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		resp, _ := st.admin.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{
			Subscription: pubsubio.SubscriptionPath(project, "inventory-dead-letter-sub"), MaxMessages: 1000})
		for _, m := range resp.GetReceivedMessages() {
			dl, err := badinput.CheckDeadLetter(m.GetMessage().GetData(), m.GetMessage().GetAttributes())
			if err != nil {
				t.Error(err)
				continue
			}
			sum := dl.GetPayloadSha256()
			if sum == "" {
				sum = badinput.PayloadSHA256(dl.GetPayload())
			}
			got[sum] = dl.GetReason()
		}
		return len(got) >= len(want), fmt.Sprintf("%d of %d", len(got), len(want))
	})
	for sum, reason := range want {
		if got[sum] != reason {
			t.Errorf("payload %s: reason %q on the topic, want %q", sum, got[sum], reason)
		}
	}
}

func init() {
	register.DoFn2x1[context.Context, []byte, error](&publishRawFn{})
}

// publishRawFn publishes marshaled pubsubpb.PubsubMessages to Topic with
// one Publish call each, as they are: what Dataflow's native write does with
// commit.DeadLetterMessages' output. A refusal fails the bundle.
type publishRawFn struct {
	Topic  string
	client *pubsub.Client
}

func (f *publishRawFn) Setup(ctx context.Context) error {
	var err error
	f.client, err = pubsubio.NewClient(ctx, project)
	return err
}

func (f *publishRawFn) ProcessElement(ctx context.Context, raw []byte) error {
	var m pubsubpb.PubsubMessage
	if err := proto.Unmarshal(raw, &m); err != nil {
		return err
	}
	if _, err := f.client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: f.Topic, Messages: []*pubsubpb.PubsubMessage{&m}}); err != nil {
		return fmt.Errorf("publish dead letter of %d bytes: %w", len(m.GetData()), err)
	}
	return nil
}

func (f *publishRawFn) Teardown() error {
	if f.client != nil {
		return f.client.Close()
	}
	return nil
}
