package broker_test

import (
	"context"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/inventory-events/inventory/internal/testkit/badinput"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/broker"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

const corpusDir = "../../testdata/badinput"

func loadCorpus(t *testing.T) []badinput.Case {
	t.Helper()
	cs, err := badinput.Cases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// deadLetterReasons pulls the dead-letter subscription and returns the
// reason of each record, keyed by the SHA-256 of the whole payload (the
// envelope keeps the first event.MaxDeadLetterPayload bytes of it).
func deadLetterReasons(t *testing.T, a *broker.Admin) map[string]string {
	t.Helper()
	out := map[string]string{}
	eachDeadLetter(t, a, "inventory-dead-letter-sub", func(m *pubsubpb.PubsubMessage, dl *inventoryv1.DeadLetter) {
		if _, err := badinput.CheckDeadLetter(m.GetData(), m.GetAttributes()); err != nil {
			t.Error(err)
		}
		sum := dl.GetPayloadSha256()
		if sum == "" {
			sum = badinput.PayloadSHA256(dl.GetPayload())
		}
		out[sum] = dl.GetReason()
	})
	return out
}

// pstestMaxMessage is the largest request pstest's gRPC server takes
// (grpc-go's default, 4 MiB): the corpus's 9 MB cases reach the consumer in
// TestCorpusAtTheEmulator instead.
const pstestMaxMessage = 4 << 20

// TestCorpusThroughConsumer sends every bad message of the corpus to a
// consumer (on pstest, which checks neither schemas nor attribute limits,
// so every payload arrives) and checks each is dead-lettered with its
// specific reason, within Pub/Sub's limits, and none crashes it.
func TestCorpusThroughConsumer(t *testing.T) {
	slowtest.Skip(t, "the whole corpus through a consumer")
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	a := adminAt(t, srv.Addr)
	setup(t, a, "json")
	ctx := context.Background()
	pub := a.Client.Publisher("inventory-topic")
	var cases []badinput.Case
	for _, c := range loadCorpus(t) {
		if c.Size < pstestMaxMessage {
			cases = append(cases, c)
		}
	}
	published, err := badinput.PublishAll(ctx, pub, corpusDir, cases)
	if err != nil {
		t.Fatal(err)
	}
	pub.Stop()
	if len(published.Refused) != 0 {
		t.Fatalf("pstest refused %v", published.Refused)
	}
	_, st := consume(t, a, nil, "")
	if st.Received != int64(len(cases)) || st.DeadLettered != int64(len(cases)) {
		t.Fatalf("stats %v, want all %d dead-lettered", st, len(cases))
	}
	got := deadLetterReasons(t, a)
	for sum, reason := range published.Want {
		if got[sum] != reason {
			t.Errorf("payload %s: dead-letter reason %q, want %q", sum, got[sum], reason)
		}
	}
}

// TestCorpusAtTheEmulator publishes the corpus to the local Pub/Sub with the
// schema bound: what breaks the schema is refused at publish, as Pub/Sub
// does; the rest passes the schema and is dead-lettered by the consumer's
// contract checks. Together they account for every case.
func TestCorpusAtTheEmulator(t *testing.T) {
	slowtest.Skip(t, "the whole corpus through the local Pub/Sub")
	for _, enc := range []string{"JSON", "BINARY"} {
		t.Run(enc, func(t *testing.T) {
			a := startEmulator(t)
			setup(t, a, strings.ToLower(enc))
			ctx := context.Background()
			pub := a.Client.Publisher("inventory-topic")
			var refused, accepted []string
			for _, c := range loadCorpus(t) {
				if c.Encoding != enc {
					continue
				}
				m, err := c.Message(corpusDir)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := pub.Publish(ctx, m).Get(ctx); err != nil {
					if !strings.Contains(err.Error(), "InvalidArgument") {
						t.Fatalf("%s: %v", c.Name, err)
					}
					refused = append(refused, c.Name)
					continue
				}
				accepted = append(accepted, c.Name)
			}
			pub.Stop()
			_, st := consume(t, a, nil, "")
			if st.DeadLettered != int64(len(accepted)) || st.Applied != 0 {
				t.Fatalf("stats %v: the %d cases the schema accepted must all be dead-lettered", st, len(accepted))
			}
			if got := len(deadLetterReasons(t, a)); got != len(accepted) {
				t.Errorf("%d dead letters on the topic, want %d", got, len(accepted))
			}
			sort.Strings(refused)
			t.Logf("%s: refused at publish %d %v; dead-lettered by the consumer %d", enc, len(refused), refused, len(accepted))
			if len(refused) == 0 {
				t.Fatal("the schema refused nothing")
			}
		})
	}
}

// TestCSVCorpusThroughPublisher publishes each bad CSV: every bad row is
// refused with its line number, and dead-lettered with its reason.
func TestCSVCorpusThroughPublisher(t *testing.T) {
	a := startEmulator(t)
	setup(t, a, "json")
	cases, err := badinput.CSVCases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		f, err := os.Open(c.Path(corpusDir))
		if err != nil {
			t.Fatal(err)
		}
		var errs strings.Builder
		st, err := broker.NewPublisher(a, broker.PublishConfig{Topic: "inventory-topic", DeadLetterTopic: "inventory-dead-letter",
			Name: c.File, Errors: &errs, Now: func() time.Time { return sampleNow }}).Publish(context.Background(), f)
		f.Close()
		if c.HeaderError != "" {
			if err == nil || !strings.Contains(err.Error(), c.HeaderError) {
				t.Errorf("%s: %v, want a header error", c.File, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		if st.Published != c.Accepted || st.Rejected != len(c.Rejected) {
			t.Errorf("%s: %+v, want %d published %d rejected", c.File, st, c.Accepted, len(c.Rejected))
		}
		for _, r := range c.Rejected {
			want := c.File + ":" + itoa(r.Line) + ": rejected: " + r.Reason
			if !strings.Contains(errs.String(), want) {
				t.Errorf("%s: errors %q lack %q", c.File, errs.String(), want)
			}
		}
	}
	reasons := deadLetterReasons(t, a)
	n := 0
	for _, c := range cases {
		n += len(c.Rejected)
	}
	if len(reasons) != n {
		t.Fatalf("%d dead letters, want %d: %v", len(reasons), n, reasons)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestConsumerDropsRefusedDeadLetter: a dead letter that Pub/Sub refuses
// for good (the dead-letter topic here has a schema the envelope does not
// match: INVALID_ARGUMENT) is counted as dropped and its message acked, so
// it is not redelivered forever; the valid event after it is applied.
func TestConsumerDropsRefusedDeadLetter(t *testing.T) {
	a := startEmulator(t)
	setup(t, a, "json")
	ctx := context.Background()
	refusing := "projects/" + project + "/topics/dead-letter-with-a-schema"
	if _, err := a.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: refusing,
		SchemaSettings: &pubsubpb.SchemaSettings{Schema: "projects/" + project + "/schemas/inventory-schema", Encoding: pubsubpb.Encoding_JSON}}); err != nil {
		t.Fatal(err)
	}
	pub := a.Client.Publisher("inventory-topic")
	for _, data := range []string{
		`{"event_id": "bad-sign", "sku": "SKU-1", "location_id": "STORE-1", "reason": "SOLD", "quantity": 3, "event_time": "2026-11-24T10:00:00Z", "source": "pos"}`,
		`{"event_id": "good-1", "sku": "SKU-1", "location_id": "STORE-1", "reason": "RECEIVED", "quantity": 3, "event_time": "2026-11-24T10:00:00Z", "source": "pos"}`,
	} {
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(data)}).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pub.Stop()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, st, err := broker.NewConsumer(a, broker.ConsumeConfig{
		Subscription: "inventory-sub", DeadLetterTopic: "dead-letter-with-a-schema",
		Thresholds: thresholds(t), Interval: 200 * time.Millisecond, MaxIdle: 3 * time.Second,
		Now: func() time.Time { return sampleNow },
	}).Consume(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Received != 2 || st.Applied != 1 || st.Dropped != 1 || st.DeadLettered != 0 {
		t.Fatalf("stats %v, want 2 received, 1 applied, 1 dropped", st)
	}
	// Acked: nothing comes back.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	resp, err := a.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{
		Subscription: "projects/" + project + "/subscriptions/inventory-sub", MaxMessages: 10})
	if err == nil && len(resp.GetReceivedMessages()) > 0 {
		t.Errorf("%d messages redelivered after the run, want none", len(resp.GetReceivedMessages()))
	}
}
