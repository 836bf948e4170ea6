package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/internal/app/localstack"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// TestMain lets a test run this package's CLI as a child process: the test
// binary re-executes itself with INVENTORY_CLI_ARGS set.
func TestMain(m *testing.M) {
	if args := os.Getenv("INVENTORY_CLI_ARGS"); args != "" {
		beam.Init()
		os.Exit(Main(strings.Split(args, "\x1f")))
	}
	os.Exit(m.Run())
}

// upProcess is `inventory up` running as a child process.
type upProcess struct {
	cmd    *exec.Cmd
	pubsub string
	lines  chan string
	stderr *bytes.Buffer
}

func startUp(t *testing.T, args ...string) *upProcess {
	t.Helper()
	return startUpCmd(t, upCommand(os.Args[0], args...))
}

// upCommand is `inventory up args...` run by the test binary bin.
func upCommand(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "INVENTORY_CLI_ARGS="+strings.Join(append([]string{"up"}, args...), "\x1f"))
	return cmd
}

// startUpCmd starts cmd, an upCommand, and waits until up is ready.
func startUpCmd(t *testing.T, cmd *exec.Cmd) *upProcess {
	t.Helper()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, lines: make(chan string, 100), stderr: &bytes.Buffer{}}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	deadline := time.After(3 * time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("up exited before it was ready:\n%s", p.stderr)
			}
			p.stderr.WriteString(l + "\n")
			if f := strings.Fields(l); len(f) > 1 && f[0] == "pubsub" {
				p.pubsub = f[1]
			}
			if l == "ready; Ctrl-C stops" {
				return p
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("up not ready in 3 minutes:\n%s", p.stderr)
		}
	}
}

// interrupt sends SIGINT and checks that up stops cleanly.
func (p *upProcess) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for l := range p.lines {
			p.stderr.WriteString(l + "\n")
		}
		done <- p.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("up ended with %v:\n%s", err, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), "stopped") {
			t.Fatalf("up did not say it stopped:\n%s", p.stderr)
		}
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Kill()
		t.Fatalf("up did not stop within 2 minutes of SIGINT:\n%s", p.stderr)
	}
}

// TestUpLosesNothing starts the stack, publishes half the sample, stops it
// with SIGINT while the stream works, starts it again on the same data
// directory, publishes the rest, and checks that every event reached the
// warehouse exactly once.
func TestUpLosesNothing(t *testing.T) {
	slowtest.Skip(t, "runs inventory up (Prism jobs)")
	dir := t.TempDir()
	wh := filepath.Join(dir, "warehouse")
	args := []string{"--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", filepath.Join(dir, "pubsub"),
		"--warehouse", wh, "--reports", filepath.Join(dir, "reports"), "--snapshot", sampleSnap, "--thresholds", sampleTh,
		"--project", "up-test"}
	// A stream big enough to be stopped half way, then the sample's rows.
	var first bytes.Buffer
	if err := synth.Generate(&first, synth.Config{Events: 5_000, Seed: 99}); err != nil {
		t.Fatal(err)
	}
	_, second, err := splitCSV(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publish := func(p *upProcess, data []byte) int {
		t.Setenv("PUBSUB_EMULATOR_HOST", p.pubsub)
		a, err := broker.NewAdmin(ctx, "up-test")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		st, err := broker.NewPublisher(a, broker.PublishConfig{Topic: "inventory-topic", Format: "json"}).Publish(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return st.Published
	}
	count := func() int64 {
		n, err := warehouse.QueryInt(ctx, wh, "SELECT count(DISTINCT event_id) FROM adjustments")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	up := startUp(t, args...)
	published := publish(up, first.Bytes())
	// Stop while the stream is at work: once some events are in, not all.
	deadline := time.Now().Add(2 * time.Minute)
	for count() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	up.interrupt(t)
	before := count()
	t.Logf("stopped with %d of %d events in the warehouse", before, published)
	if before >= int64(published) {
		t.Logf("the stream finished before the stop; the restart is still checked")
	}

	up = startUp(t, args...)
	published += publish(up, second)
	deadline = time.Now().Add(3 * time.Minute)
	for count() < int64(published) && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	up.interrupt(t)
	if got := count(); got != int64(published) {
		t.Fatalf("%d of %d events in the warehouse after the restart", got, published)
	}
}

// TestServeDebug checks what up --debug-addr serves: the goroutine profile
// whose first line cmd/tools/soak reads.
func TestServeDebug(t *testing.T) {
	url, stop, err := serveDebug("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get(url + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(line, "goroutine profile: total ") {
		t.Fatalf("GET %sgoroutine?debug=1: %s, first line %q", url, resp.Status, line)
	}
}

// TestUpClaims: while one `inventory up` runs, a second on the same data
// directory is refused with the first one's pid, and so is one with
// another data directory on the same warehouse; the claims go with the
// first up, when it stops and when it is killed.
func TestUpClaims(t *testing.T) {
	slowtest.Skip(t, "runs inventory up (Prism jobs)")
	dir := t.TempDir()
	data, wh := filepath.Join(dir, "pubsub"), filepath.Join(dir, "warehouse")
	args := func(data string) []string {
		return []string{"--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", data, "--warehouse", wh,
			"--reports", filepath.Join(dir, "reports"), "--snapshot", sampleSnap, "--thresholds", sampleTh, "--project", "up-test"}
	}
	first := startUp(t, args(data)...)
	pid := claimPID(t, data)
	if pid != first.cmd.Process.Pid && parentPID(pid) != first.cmd.Process.Pid {
		t.Fatalf("the data directory's claim names pid %d, neither up (%d) nor its confined child", pid, first.cmd.Process.Pid)
	}
	for _, tc := range []struct{ data, want string }{
		{data, fmt.Sprintf("the data directory %s is in use by another inventory up (pid %d, since ", data, pid)},
		{filepath.Join(dir, "pubsub2"), fmt.Sprintf("the warehouse %s is in use by another inventory up (pid %d, since ", wh, pid)},
	} {
		out, err := upCommand(os.Args[0], args(tc.data)...).CombinedOutput()
		t.Logf("second up: %v: %s", err, out)
		if err == nil || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), fmt.Sprintf("kill %d", pid)) {
			t.Errorf("a second up: %v\n%s\nwant a refusal saying %q", err, out, tc.want)
		}
	}
	first.interrupt(t)
	// Stopped: the next up takes both over; killed: so does the one after.
	second := startUp(t, args(data)...)
	p := claimPID(t, data)
	syscall.Kill(p, syscall.SIGKILL) // the holder: up, or its confined child
	second.cmd.Process.Kill()
	second.cmd.Wait()
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(p, 0) == nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	startUp(t, args(data)...).interrupt(t)
}

// claimPID is the pid recorded in dir's claim file.
func claimPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, localstack.ClaimFile))
	if err != nil {
		t.Fatal(err)
	}
	var owner struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal(b, &owner); err != nil {
		t.Fatalf("claim file %q: %v", b, err)
	}
	return owner.PID
}

// parentPID is the parent of process pid, from /proc (0 if unknown).
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold blanks, so after its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// TestEmulatorRespectsClaim: `inventory emulator --data-dir` on a data
// directory that `inventory up` holds is refused, naming up and its pid.
func TestEmulatorRespectsClaim(t *testing.T) {
	dir := t.TempDir()
	up, err := localstack.ClaimDir(dir, "data directory", "inventory up")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Release()
	root := NewRoot()
	root.SetArgs([]string{"emulator", "--data-dir", dir, "--port", "0"})
	root.SetErr(io.Discard)
	err = root.ExecuteContext(context.Background())
	want := fmt.Sprintf("emulator: the data directory %s is in use by another inventory up (pid %d, since ", dir, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("emulator on a held data directory: %v; want %q", err, want)
	}
}
