package pubsubemu

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

const crashDirEnv = "PUBSUBEMU_CRASH_DIR"

// TestCrashChildProcess is the child half of TestPublishedMessagesSurviveKill:
// it publishes into a data dir, reports the ids and waits to be killed.
func TestCrashChildProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return // only meaningful as the child process
	}
	s, err := Start("127.0.0.1:0", Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClient(t, s.Addr())
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic")})
	msgs := make([]*pubsub.Message, 500)
	for i := range msgs {
		msgs[i] = &pubsub.Message{Data: fmt.Appendf(nil, "%d", i)}
	}
	ids := publish(t, c, topicName("topic"), msgs...)
	fmt.Printf("PUBLISHED %s\n", strings.Join(ids, ","))
	time.Sleep(time.Minute) // killed by the parent long before this ends
}

func TestPublishedMessagesSurviveKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	var ids []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "PUBLISHED "); ok {
			ids = strings.Split(rest, ",")
			break
		}
	}
	// SIGKILL: no Close, no flush; only what publish acknowledged was committed.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	_ = cmd.Wait()
	if len(ids) != 500 {
		t.Fatalf("child reported %d published ids", len(ids))
	}

	b := startEmu(t, Options{DataDir: dir})
	c := newClient(t, b.addr)
	var got []string
	for {
		page := pull(t, c, subName("sub"), 1000)
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.Message.MessageId)
		}
		ack(t, c, subName("sub"), ackIDs(page)...)
	}
	sort.Strings(got)
	sort.Strings(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("after SIGKILL and restart got %d messages, want the %d acknowledged by publish", len(got), len(ids))
	}
}
