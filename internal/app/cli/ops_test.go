package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAlertsUnreachablePubSub: `alerts` and `thresholds set` against a
// Pub/Sub that is not there fail at once naming the address and the
// command to start, instead of "0 alerts" and exit 0, or a minute's wait
// and a hint to run setup.
func TestAlertsUnreachablePubSub(t *testing.T) {
	addr := closedAddr(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", addr)
	for _, args := range [][]string{{"alerts"}, {"alerts", "--follow"}, {"thresholds", "set", "--warehouse", t.TempDir(), "SKU-1", "STORE-1", "5"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*probeTimeout)
		stdout, stderr, err := runCLI(t, ctx, args...)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "cannot reach Pub/Sub at "+addr) || !strings.Contains(err.Error(), "`inventory up`") {
			t.Errorf("%v: %v, want cannot reach Pub/Sub at %s and the hint to start inventory up", args, err, addr)
		}
		if err != nil && strings.Contains(err.Error(), "setup") {
			t.Errorf("%v: a wrong hint: %v", args, err)
		}
		if strings.Contains(stderr, "0 alerts") || stdout != "" {
			t.Errorf("%v printed %q %q", args, stdout, stderr)
		}
	}
}

// TestAlertsFollowSaysConnectionLost: `alerts --follow` says on stderr when
// the local Pub/Sub goes away, and again when it is back.
func TestAlertsFollowSaysConnectionLost(t *testing.T) {
	slowtest.Skip(t, "waits for a follow pull to notice a stopped emulator")
	data := filepath.Join(t.TempDir(), "pubsub")
	emu, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	addr := emu.Addr()
	t.Setenv("PUBSUB_EMULATOR_HOST", addr)
	if _, _, err := runCLI(t, context.Background(), "setup", "--project", "p", "--warehouse", filepath.Join(t.TempDir(), "wh")); err != nil {
		emu.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		root := NewRoot()
		root.SetArgs([]string{"alerts", "--follow", "--project", "p"})
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&stderr)
		done <- root.ExecuteContext(ctx)
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(followPull + 3*probeTimeout)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("alerts --follow did not say %q; stderr %q", what, stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(time.Second) // let it pull once
	emu.Close()
	waitFor("connection lost: cannot reach Pub/Sub at " + addr)
	emu, err = pubsubemu.Start(addr, pubsubemu.Options{DataDir: data})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer emu.Close()
	waitFor("connection to Pub/Sub at " + addr + " is back")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("alerts --follow ended with %v after an interrupt", err)
	}
	if n := strings.Count(stderr.String(), "connection lost"); n != 1 {
		t.Errorf("said connection lost %d times, want once: %q", n, stderr.String())
	}
}

// TestThresholdsWarnUnseen: a rule for a key the warehouse never saw is
// warned about, a seen key (or a seen SKU, for "*") is not.
func TestThresholdsWarnUnseen(t *testing.T) {
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "wh")
	if _, err := warehouse.Setup(ctx, wh, "", false); err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	_, err = w.Write(ctx, warehouse.Rows([]warehouse.StockLevelRow{{SKU: "SKU-SEEN", LocationID: "STORE-1", OnHand: 3,
		EventID: "e1", Reason: "COUNTED", EventTime: now, ProcessedAt: now, Threshold: 10, Severity: "LOW"}}))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sku, loc string
		warn     bool
	}{
		{"SKU-SEEN", "STORE-1", false},
		{"SKU-SEEN", "*", false},
		{"SKU-SEEN", "STORE-2", true},
		{"SKU-TYPO", "STORE-1", true},
		{"SKU-TYPO", "*", true},
		{"SKU-'x", "*", true},
	} {
		var buf bytes.Buffer
		warnUnseen(ctx, &buf, wh, &ledger.Change{SKU: tc.sku, LocationID: tc.loc})
		if got := strings.Contains(buf.String(), "warning: SKU "+tc.sku) && strings.Contains(buf.String(), "never seen in "+wh); got != tc.warn {
			t.Errorf("%s %s: warned %q, want a warning %v", tc.sku, tc.loc, buf.String(), tc.warn)
		}
	}
	// No warehouse: no warning (and no failure).
	var buf bytes.Buffer
	warnUnseen(ctx, &buf, filepath.Join(t.TempDir(), "none"), &ledger.Change{SKU: "SKU-1", LocationID: "*"})
	if buf.Len() != 0 {
		t.Errorf("no warehouse: %q", buf.String())
	}
}
