// Command emubench measures the local Pub/Sub emulator against pstest: it
// publishes a backlog through the official client, then drains it through
// Receive (StreamingPull) and through synchronous Pull + Acknowledge,
// reporting messages/s and peak RSS. Each case runs in a fresh child process
// so its peak RSS (VmHWM) is its own.
//
//	go run ./cmd/tools/emubench [-n 100000] [-timeout 60s]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inventory-events/inventory/cmd/tools/internal/benchkit"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
)

type result struct {
	Case       string  `json:"case"`
	Published  int     `json:"published"`
	PublishSec float64 `json:"publish_sec"`
	Drained    int     `json:"drained"`
	DrainSec   float64 `json:"drain_sec"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	HeapMB     float64 `json:"heap_after_drain_mb"`
	Err        string  `json:"err,omitempty"`
}

var (
	flagN       = flag.Int("n", 100000, "messages to publish")
	flagTimeout = flag.Duration("timeout", 30*time.Second, "cap on each drain")
	flagCase    = flag.String("case", "", "run one case in this process (used by the parent)")
	flagMaxOut  = flag.Int("max-outstanding", 0, "Receive MaxOutstandingMessages (0 = client default, 1000)")
	flagProfile = flag.String("cpuprofile", "", "with -case: write a CPU profile")
)

const project = "bench"

// A case is server/path. Paths: receive (client defaults: 1 stream, 1,000
// outstanding messages), receive10k (MaxOutstandingMessages 10,000), pull
// (synchronous Pull of 1,000 + Acknowledge).
var cases = []string{
	"emulator/receive", "emulator/receive10k", "emulator/pull",
	"emulator+schema/receive10k",
	"emulator+datadir/receive10k", "emulator+datadir/pull",
	"pstest/receive", "pstest/receive10k", "pstest/pull",
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *flagCase != "" {
		if *flagProfile != "" {
			f, err := os.Create(*flagProfile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		res := runCase(*flagCase)
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatalf("emubench: %v", err)
	}
	fmt.Printf("%d JSON messages of %d bytes, drain capped at %v, GOMAXPROCS=%s\n\n", *flagN, len(payload(0)), *flagTimeout, orDefault(os.Getenv("GOMAXPROCS"), "all cores"))
	fmt.Printf("%-28s %10s %9s %8s %12s %12s %14s\n", "case", "publish/s", "drained", "drain s", "drain msg/s", "peak RSS MB", "heap after MB")
	for _, c := range cases {
		args := []string{"-case", c, "-n", strconv.Itoa(*flagN), "-timeout", flagTimeout.String(), "-max-outstanding", strconv.Itoa(*flagMaxOut)}
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		var r result
		if err == nil {
			err = json.Unmarshal(lastLine(out), &r)
		}
		if err != nil {
			fmt.Printf("%-28s error: %v\n", c, err)
			continue
		}
		if r.Err != "" {
			fmt.Printf("%-28s error: %s\n", c, r.Err)
			continue
		}
		fmt.Printf("%-28s %10.0f %9d %8.2f %12.0f %12.1f %14.1f\n", r.Case, float64(r.Published)/r.PublishSec, r.Drained, r.DrainSec, float64(r.Drained)/r.DrainSec, r.PeakRSSMB, r.HeapMB)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

const schemaDef = `syntax = "proto3";
message Adjustment {
  string event_id = 1;
  string event_time = 2;
  string sku = 3;
  string location_id = 4;
  string reason = 5;
  int64 quantity = 6;
  string source = 7;
}
`

func runCase(name string) (res result) {
	res.Case = name
	server, path, _ := strings.Cut(name, "/")
	ctx := context.Background()
	addr, stop, err := startServer(server)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer stop()
	copts := []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled(),
	}
	c, err := pubsub.NewClient(ctx, project, copts...)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer c.Close()
	topic, sub, err := createResources(ctx, c, copts, server == "emulator+schema")
	if err != nil {
		res.Err = err.Error()
		return res
	}

	n := *flagN
	start := time.Now()
	if err := publishAll(ctx, c, topic, n); err != nil {
		res.Err = err.Error()
		return res
	}
	res.Published, res.PublishSec = n, time.Since(start).Seconds()

	dctx, cancel := context.WithTimeout(ctx, *flagTimeout)
	defer cancel()
	start = time.Now()
	switch path {
	case "receive":
		res.Drained, err = drainReceive(dctx, c, sub, n, *flagMaxOut)
	case "receive10k":
		res.Drained, err = drainReceive(dctx, c, sub, n, 10000)
	case "pull":
		res.Drained, err = drainPull(dctx, c, sub, n)
	default:
		err = errors.New("unknown path " + path)
	}
	res.DrainSec = time.Since(start).Seconds()
	if err != nil && dctx.Err() == nil { // hitting the drain cap is a result, not an error
		res.Err = err.Error()
	}
	res.PeakRSSMB = benchkit.PeakRSS()
	cancel()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapMB = float64(ms.HeapInuse) / (1 << 20)
	return res
}

// startServer starts the server of a case: the local Pub/Sub (with a data
// directory for emulator+datadir) or pstest. It returns its address.
func startServer(server string) (addr string, stop func(), err error) {
	switch server {
	case "emulator", "emulator+schema", "emulator+datadir":
		opts := pubsubemu.Options{}
		dir := ""
		if server == "emulator+datadir" {
			if dir, err = os.MkdirTemp("", "emubench"); err != nil {
				return "", nil, err
			}
			opts.DataDir = dir
		}
		s, err := pubsubemu.Start("127.0.0.1:0", opts)
		if err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		return s.Addr(), func() { s.Close(); os.RemoveAll(dir) }, nil
	case "pstest":
		s := pstest.NewServer()
		return s.Addr, func() { s.Close() }, nil
	default:
		return "", nil, errors.New("unknown server " + server)
	}
}

// createResources creates the benchmark's topic (with a Protobuf schema if
// schema) and subscription, and returns their names.
func createResources(ctx context.Context, c *pubsub.Client, copts []option.ClientOption, schema bool) (topic, sub string, err error) {
	topic = "projects/" + project + "/topics/inventory-topic"
	sub = "projects/" + project + "/subscriptions/inventory-sub"
	tp := &pb.Topic{Name: topic}
	if schema {
		sc, err := newSchemaClient(ctx, copts)
		if err != nil {
			return "", "", err
		}
		s, err := sc.CreateSchema(ctx, &pb.CreateSchemaRequest{Parent: "projects/" + project, SchemaId: "adjustment",
			Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaDef}})
		if err != nil {
			return "", "", err
		}
		tp.SchemaSettings = &pb.SchemaSettings{Schema: s.Name, Encoding: pb.Encoding_JSON}
	}
	if _, err := c.TopicAdminClient.CreateTopic(ctx, tp); err != nil {
		return "", "", err
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: sub, Topic: topic, AckDeadlineSeconds: 60}); err != nil {
		return "", "", err
	}
	return topic, sub, nil
}

func publishAll(ctx context.Context, c *pubsub.Client, topic string, n int) error {
	p := c.Publisher(topic)
	defer p.Stop()
	results := make([]*pubsub.PublishResult, 0, n)
	for i := range n {
		data := payload(i)
		results = append(results, p.Publish(ctx, &pubsub.Message{Data: data}))
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
	}
	return nil
}

// payload is an InventoryAdjustment in JSON.
func payload(i int) []byte {
	return fmt.Appendf(nil, `{"event_id":"ev-%08d","event_time":"2026-01-02T03:04:05Z","sku":"SKU-%04d","location_id":"LOC-%02d","reason":"SOLD","quantity":"-1","source":"pos"}`, i, i%5000, i%40)
}

func drainReceive(ctx context.Context, c *pubsub.Client, sub string, n, maxOutstanding int) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := c.Subscriber(sub)
	if maxOutstanding > 0 {
		s.ReceiveSettings.MaxOutstandingMessages = maxOutstanding
	}
	var mu sync.Mutex
	seen := make(map[string]struct{}, n)
	err := s.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		seen[m.ID] = struct{}{}
		if len(seen) >= n {
			cancel()
		}
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) >= n {
		err = nil
	}
	return len(seen), err
}

func drainPull(ctx context.Context, c *pubsub.Client, sub string, n int) (int, error) {
	var got atomic.Int64
	seen := make(map[string]struct{}, n)
	for len(seen) < n {
		resp, err := c.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: 1000})
		if err != nil {
			return len(seen), err
		}
		ids := make([]string, len(resp.ReceivedMessages))
		for i, m := range resp.ReceivedMessages {
			ids[i] = m.AckId
			seen[m.Message.MessageId] = struct{}{}
		}
		if len(ids) > 0 {
			if err := c.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
				return len(seen), err
			}
		}
		got.Store(int64(len(seen)))
	}
	return int(got.Load()), nil
}

func newSchemaClient(ctx context.Context, opts []option.ClientOption) (*vkit.SchemaClient, error) {
	return vkit.NewSchemaClient(ctx, opts...)
}
