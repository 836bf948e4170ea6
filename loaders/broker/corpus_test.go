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
// reason of each record, keyed by the payload.
func deadLetterReasons(t *testing.T, a *broker.Admin) map[string]string {
	t.Helper()
	out := map[string]string{}
	eachDeadLetter(t, a, "inventory-dead-letter-sub", func(m *pubsubpb.PubsubMessage, dl *inventoryv1.DeadLetter) {
		if _, err := badinput.CheckDeadLetter(m.GetData(), m.GetAttributes()); err != nil {
			t.Error(err)
		}
		out[string(dl.GetPayload())] = dl.GetReason()
	})
	return out
}

// TestCorpusThroughConsumer sends every bad payload of the corpus to a
// consumer (on pstest, which checks no schema, so every payload arrives) and
// checks each is dead-lettered with its specific reason, and none crashes it.
func TestCorpusThroughConsumer(t *testing.T) {
	slowtest.Skip(t, "the whole corpus through a consumer")
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	a := adminAt(t, srv.Addr)
	setup(t, a, "json")
	ctx := context.Background()
	pub := a.Client.Publisher("inventory-topic")
	cases := loadCorpus(t)
	want, err := badinput.PublishAll(ctx, pub, corpusDir, cases)
	if err != nil {
		t.Fatal(err)
	}
	pub.Stop()
	_, st := consume(t, a, nil, "")
	if st.Received != int64(len(cases)) || st.DeadLettered != int64(len(cases)) {
		t.Fatalf("stats %v, want all %d dead-lettered", st, len(cases))
	}
	got := deadLetterReasons(t, a)
	for payload, reason := range want {
		if got[payload] != reason {
			t.Errorf("payload %.40q: dead-letter reason %q, want %q", payload, got[payload], reason)
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
				data, err := c.Payload(corpusDir)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := pub.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
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
