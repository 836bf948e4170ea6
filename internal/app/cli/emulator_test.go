package cli

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/broker"
)

// fillTopic publishes 9 MB messages, one request each and without the
// client's retries, to a topic with a subscription nobody reads, and
// returns the status code of each publish.
func fillTopic(t *testing.T, pubsubAddr, project, topic string, n int) []codes.Code {
	t.Helper()
	t.Setenv("PUBSUB_EMULATOR_HOST", pubsubAddr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := broker.NewAdmin(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	name := "projects/" + project + "/topics/" + topic
	if _, err := a.Client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name}); status.Code(err) == codes.NotFound {
		if _, err := a.Client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: "projects/" + project + "/subscriptions/" + topic + "-unread", Topic: name}); err != nil {
			t.Fatal(err)
		}
	}
	big := &pubsubpb.PubsubMessage{Data: bytes.Repeat([]byte("9"), 9_000_000)}
	var out []codes.Code
	for range n {
		_, err := a.Client.TopicAdminClient.Publish(ctx, &pubsubpb.PublishRequest{Topic: name, Messages: []*pubsubpb.PubsubMessage{big}},
			gax.WithRetry(func() gax.Retryer { return nil }))
		out = append(out, status.Code(err))
	}
	return out
}

// TestEmulatorMaxTopicBytes runs `inventory emulator --max-topic-bytes`:
// two 9 MB messages fit a 20 MB cap, a third is refused with
// RESOURCE_EXHAUSTED, as Pub/Sub refuses a publish past a quota.
func TestEmulatorMaxTopicBytes(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INVENTORY_CLI_ARGS="+strings.Join([]string{"emulator", "--port", "0", "--max-topic-bytes", "20000000"}, "\x1f"))
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 4 && strings.HasPrefix(sc.Text(), "Pub/Sub emulator listening on") {
				addr <- f[4]
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("the emulator did not say where it listens")
	}
	got := fillTopic(t, a, "emu-test", "capped", 3)
	if want := []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted}; !slices.Equal(got, want) {
		t.Errorf("publishes of 9 MB under --max-topic-bytes 20000000: %v, want %v", got, want)
	}
}

// TestUpMaxTopicBytes: `inventory up --max-topic-bytes` caps its local
// Pub/Sub's topics the same way.
func TestUpMaxTopicBytes(t *testing.T) {
	slowtest.Skip(t, "runs inventory up (Prism jobs)")
	dir := t.TempDir()
	up := startUp(t, "--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", "",
		"--warehouse", filepath.Join(dir, "warehouse"), "--reports", filepath.Join(dir, "reports"),
		"--snapshot", sampleSnap, "--thresholds", sampleTh, "--project", "up-test", "--max-topic-bytes", "20000000")
	got := fillTopic(t, up.pubsub, "up-test", "capped", 3)
	up.interrupt(t)
	if want := []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted}; !slices.Equal(got, want) {
		t.Errorf("publishes of 9 MB under up --max-topic-bytes 20000000: %v, want %v", got, want)
	}
}
