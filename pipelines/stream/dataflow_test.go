package stream

import (
	"context"
	"flag"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/transforms/pubsubio"
	"github.com/inventory-events/inventory/transforms/stock"
)

// captureLog keeps what Beam logs.
type captureLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (c *captureLog) Log(_ context.Context, _ beamlog.Severity, _ int, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.WriteString(msg)
	c.buf.WriteByte('\n')
}

// TestDataflowDryRun translates the job for Dataflow with --dry_run and no
// credentials: a streaming job whose Pub/Sub read and writes are the
// runner's native transforms, not the SDF or the acking sink.
func TestDataflowDryRun(t *testing.T) {
	// environment_type and experiments too: a Prism run earlier in this
	// process sets them to LOOPBACK, which Dataflow refuses, and to Prism's
	// no-split experiment, which a Dataflow job has no use for.
	for name, v := range map[string]string{
		"dry_run": "true", "project": "inventory-prod", "region": "europe-west1",
		"staging_location": "gs://inventory-staging/stream", "temp_location": "gs://inventory-staging/tmp",
		"environment_type": "DOCKER", "experiments": "",
	} {
		old := flag.Lookup(name).Value.String()
		if err := flag.Set(name, v); err != nil {
			t.Fatalf("set --%s: %v", name, err)
		}
		t.Cleanup(func() { flag.Set(name, old) })
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent")
	logs := &captureLog{}
	beamlog.SetLogger(logs)
	t.Cleanup(func() { beamlog.SetLogger(&discard{}) })

	p, s := beam.NewPipelineWithRoot()
	Build(s, Config{Runner: "dataflow", Project: "inventory-prod", Subscription: DefaultSubscription,
		Thresholds: "gs://inventory-config/thresholds.csv", Snapshot: "gs://inventory-config/inventory_state.json",
		AlertTopic: DefaultAlertTopic, DeadLetterTopic: DefaultDeadLetterTopic, AlertEncoding: event.EncodingJSON,
		Warehouse: "bq://inventory-prod.inventory", ThresholdSubscription: DefaultThresholdSubscription})
	if _, err := dataflow.Execute(context.Background(), p); err != nil {
		t.Fatalf("dataflow dry run: %v", err)
	}
	out := logs.buf.String()
	for _, want := range []string{
		pubsubio.ReadURN,
		"projects/inventory-prod/subscriptions/inventory-sub",
		"projects/inventory-prod/subscriptions/threshold-updates-sub",
		pubsubio.WriteURN,
		"projects/inventory-prod/topics/low-stock-alerts",
		"projects/inventory-prod/topics/inventory-dead-letter",
		`"type": "JOB_TYPE_STREAMING"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q", want)
		}
	}
	for _, unwanted := range []string{"pubsubio.pullFn", "commit.commitFn", "stock.stockFn", "stock.shardUpdatesFn"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("dry run output has %q: the Dataflow job must use the native Pub/Sub transforms", unwanted)
		}
	}
	if t.Failed() {
		t.Logf("dry run output (first 4000 bytes):\n%.4000s", out)
	}
}

type discard struct{}

func (discard) Log(context.Context, beamlog.Severity, int, string) {}

// TestDataflowStockKeyedPerKey checks the Dataflow graph's stock stage: the
// per-key stateful DoFn, whose input is keyed by a string (the stock key),
// not by an int shard, so that Dataflow spreads it by (sku, location).
func TestDataflowStockKeyedPerKey(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Build(s, Config{Runner: "dataflow", Project: "inventory-prod", Subscription: DefaultSubscription,
		AlertEncoding: event.EncodingJSON, Warehouse: "bq://inventory-prod.inventory"})
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	model, err := graphx.Marshal(edges, &graphx.Options{Environment: &pipepb.Environment{Urn: "beam:env:docker:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	c := model.GetComponents()
	var stages []string
	for _, tr := range c.GetTransforms() {
		if !strings.Contains(tr.GetUniqueName(), "StockFn") && !strings.Contains(tr.GetUniqueName(), "stockFn") {
			continue
		}
		stages = append(stages, tr.GetUniqueName())
		main := c.GetPcollections()[tr.GetInputs()["i0"]]
		kv := c.GetCoders()[main.GetCoderId()]
		if kv.GetSpec().GetUrn() != "beam:coder:kv:v1" {
			t.Errorf("%s: input coder %s, want a KV", tr.GetUniqueName(), kv.GetSpec().GetUrn())
			continue
		}
		if key := c.GetCoders()[kv.GetComponentCoderIds()[0]]; key.GetSpec().GetUrn() != "beam:coder:string_utf8:v1" {
			t.Errorf("%s: key coder %s, want string_utf8 (the stock key)", tr.GetUniqueName(), key.GetSpec().GetUrn())
		}
	}
	if !slices.Equal(stages, []string{"stock.ApplyPerKey/stock.keyStockFn"}) {
		t.Errorf("stock stages %v, want the per-key one only", stages)
	}
}

// TestRestoreScopeByRunner checks the restore's default scope: the exact
// full replay locally, the bounded one on Dataflow; an explicit one wins.
func TestRestoreScopeByRunner(t *testing.T) {
	for _, c := range []struct{ runner, scope, want string }{
		{"prism", "", stock.ScopeFull},
		{"dataflow", "", stock.ScopeRecent},
		{"DataflowRunner", "", stock.ScopeRecent},
		{"dataflow", stock.ScopeFull, stock.ScopeFull},
	} {
		if got := (Config{Runner: c.runner, RestoreScope: c.scope}).withDefaults().RestoreScope; got != c.want {
			t.Errorf("runner %s, scope %q: %q, want %q", c.runner, c.scope, got, c.want)
		}
	}
	cfg := Config{Runner: "prism", Input: "x.csv", AlertEncoding: event.EncodingJSON, Warehouse: "w", RestoreScope: "everything"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "everything") {
		t.Errorf("Validate of scope %q: %v, want an error naming it", cfg.RestoreScope, err)
	}
}

// TestDataflowThresholdsReachStock checks that in the Dataflow graph the
// threshold updates flow from their own native Pub/Sub read, through the
// router keyed by SKU, into the per-key stock stage: walking up from
// keyStockFn's main input must meet the router, the threshold decoder and
// a native read of threshold-updates-sub.
func TestDataflowThresholdsReachStock(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	Build(s, Config{Runner: "dataflow", Project: "inventory-prod", Subscription: DefaultSubscription,
		ThresholdSubscription: DefaultThresholdSubscription, AlertEncoding: event.EncodingJSON, Warehouse: "bq://inventory-prod.inventory"})
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	model, err := graphx.Marshal(edges, &graphx.Options{Environment: &pipepb.Environment{Urn: "beam:env:docker:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	c := model.GetComponents()
	producer := map[string]string{} // pcollection -> transform id
	var stockID string
	for id, tr := range c.GetTransforms() {
		if len(tr.GetSubtransforms()) > 0 {
			continue // composites repeat their parts' outputs
		}
		for _, pc := range tr.GetOutputs() {
			producer[pc] = id
		}
		if strings.HasSuffix(tr.GetUniqueName(), "stock.keyStockFn") {
			stockID = id
		}
	}
	if stockID == "" {
		t.Fatal("no keyStockFn in the graph")
	}
	seen := map[string]bool{}
	var names []string
	var reads []string
	queue := []string{c.GetTransforms()[stockID].GetInputs()["i0"]}
	for len(queue) > 0 {
		pc := queue[0]
		queue = queue[1:]
		id, ok := producer[pc]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		tr := c.GetTransforms()[id]
		names = append(names, tr.GetUniqueName())
		if tr.GetSpec().GetUrn() == pubsubio.ReadURN {
			var rp pipepb.PubSubReadPayload
			if err := proto.Unmarshal(tr.GetSpec().GetPayload(), &rp); err != nil {
				t.Fatal(err)
			}
			reads = append(reads, rp.GetSubscription())
		}
		for _, in := range tr.GetInputs() {
			queue = append(queue, in)
		}
	}
	for _, want := range []string{"stock.routeFn", "stock.keyUpdatesFn", "stock.locationsFn"} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, want) }) {
			t.Errorf("upstream of the stock stage lacks %s: %v", want, names)
		}
	}
	slices.Sort(reads)
	if want := []string{"projects/inventory-prod/subscriptions/inventory-sub", "projects/inventory-prod/subscriptions/threshold-updates-sub"}; !slices.Equal(reads, want) {
		t.Errorf("native reads upstream of the stock stage: %v, want %v", reads, want)
	}
}
