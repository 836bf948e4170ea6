package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// TestPublishInterrupted: an interrupt in the middle of a publish prints
// one line, "publish interrupted: N published ...; resume ... --skip=M",
// and no "context canceled" per row; the first M rows are in the topic, and
// publishing again with --skip=M leaves every row of the file in it.
func TestPublishInterrupted(t *testing.T) {
	slowtest.Skip(t, "publishes thousands of rows twice")
	emu, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	t.Setenv("PUBSUB_EMULATOR_HOST", emu.Addr())
	ctx := context.Background()
	dir := t.TempDir()
	if _, _, err := runCLI(t, ctx, "setup", "--project", "p", "--warehouse", filepath.Join(dir, "wh")); err != nil {
		t.Fatal(err)
	}
	const rows = 10_000
	file := filepath.Join(dir, "e.csv")
	if _, _, err := runCLI(t, ctx, "gen", "--events", strconv.Itoa(rows), "-o", file); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(content), "\n")
	ids := make([]string, 0, rows)
	for _, l := range lines[1:] {
		if l != "" {
			ids = append(ids, l[:strings.IndexByte(l, ',')])
		}
	}

	// Standard input fed row by row: once 3,000 rows were taken, interrupt.
	pr, pw := io.Pipe()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for i, l := range lines {
			if i == 3000 {
				cancel()
			}
			if _, err := io.WriteString(pw, l); err != nil {
				return
			}
		}
		pw.Close()
	}()
	root := NewRoot()
	var stdout, stderr bytes.Buffer
	root.SetArgs([]string{"publish", "--project", "p", "--warehouse", "", "-"})
	root.SetIn(pr)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err = root.ExecuteContext(pctx)
	pr.CloseWithError(errors.New("test done"))
	if err == nil {
		t.Fatalf("an interrupted publish succeeded: %q", stderr.String())
	}
	m := regexp.MustCompile(`^publish interrupted: ([0-9,]+) published.*resume from line (\d+) with: inventory publish --skip=(\d+) -$`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("interrupted publish: %v", err)
	}
	if strings.Contains(stderr.String(), "canceled") || strings.Count(stderr.String(), "\n") > 1 {
		t.Fatalf("interrupted publish printed %q", stderr.String())
	}
	published, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	line, _ := strconv.Atoi(m[2])
	skip, _ := strconv.Atoi(m[3])
	if skip == 0 || skip > published || skip >= rows || line != skip+2 {
		t.Fatalf("published %d, resume --skip=%d at line %d, of %d rows fed about 3,000", published, skip, line, rows)
	}
	got := pullIDs(t, emu.Addr())
	for _, id := range ids[:skip] {
		if !got[id] {
			t.Fatalf("row %s, before --skip=%d, is not in the topic", id, skip)
		}
	}
	if len(got) < published {
		t.Fatalf("%d rows in the topic, %d said published", len(got), published)
	}

	// Resume: every row of the file is then in the topic.
	_, stderr2, err := runCLI(t, ctx, "publish", "--project", "p", "--warehouse", "", "--skip", strconv.Itoa(skip), file)
	if err != nil || !strings.Contains(stderr2, "published "+console.Thousands(int64(rows-skip))+" rows") {
		t.Fatalf("resume: %v %q", err, stderr2)
	}
	for id := range pullIDs(t, emu.Addr()) {
		got[id] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("row %s is not in the topic after the resume", id)
		}
	}
}

// pullIDs pulls and acks every message waiting on the input subscription,
// and returns their event ids.
func pullIDs(t *testing.T, addr string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	a, err := broker.NewAdmin(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sub := pubsubio.SubscriptionPath("p", broker.DefaultNames().Subscription)
	ids := map[string]bool{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := a.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 1000})
		cancel()
		if err != nil || len(resp.GetReceivedMessages()) == 0 {
			return ids
		}
		var acks []string
		for _, rm := range resp.GetReceivedMessages() {
			ids[rm.GetMessage().GetAttributes()[event.AttrEventID]] = true
			acks = append(acks, rm.GetAckId())
		}
		if err := a.Client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: acks}); err != nil {
			t.Fatal(err)
		}
	}
}
