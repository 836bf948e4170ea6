package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/badinput"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/csvsrc"
	"github.com/inventory-events/inventory/transforms/pubsubsrc"
	"github.com/inventory-events/inventory/transforms/stock"
)

const corpusDir = "../../testdata/badinput"

// TestCorpusThroughStream sends every payload of the bad-input corpus to
// the running job through a topic without a schema (so that what Pub/Sub
// would refuse at publish reaches the job too), plus one valid event, and
// checks that each bad one is in dead_letters and on the dead-letter topic
// with its specific reason, the valid one is applied, and the counts
// reconcile: received = applied + dead-lettered.
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
	want, err := badinput.PublishAll(ctx, pub, corpusDir, cases) // payload -> reason
	if err != nil {
		t.Fatal(err)
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
		return n >= int64(len(cases)) && a >= 1, fmt.Sprintf("%d of %d dead letters, %d of 1 adjustments", n, len(cases), a)
	})
	rows, err := warehouse.QueryRows(ctx, st.warehouse, `SELECT reason, payload, payload_sha256, stage, origin FROM dead_letters`)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(cases) {
		t.Errorf("%d dead-letter rows, want %d", len(rows), len(cases))
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
		data, _ := os.ReadFile(filepath.Join(corpusDir, c.File))
		sum := sha256.Sum256(data)
		if r := got[hex.EncodeToString(sum[:])]; r != c.Reason {
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
			Subscription: pubsubsrc.SubscriptionPath(project, "inventory-dead-letter-sub"), MaxMessages: 1000})
		if err == nil {
			for _, m := range resp.GetReceivedMessages() {
				dl, err := badinput.CheckDeadLetter(m.GetMessage().GetData(), m.GetMessage().GetAttributes())
				if err != nil {
					t.Error(err)
				}
				if dl != nil {
					topic[string(dl.GetPayload())] = dl.GetReason()
				}
			}
		}
		return len(topic) >= len(cases), fmt.Sprintf("%d of %d", len(topic), len(cases))
	})
	for payload, reason := range want {
		if topic[payload] != reason {
			t.Errorf("payload %.40q on the topic: reason %q, want %q", payload, topic[payload], reason)
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
