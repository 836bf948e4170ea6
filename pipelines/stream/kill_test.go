package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/snapshot"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/stock"
)

// childEnv makes the test binary run the streaming job (a JSON Config) on
// an in-process Prism instead of the tests, until it is killed.
const childEnv = "STREAM_TEST_CHILD_CONFIG"

// runChild is the child process of TestKillAndRestart.
func runChild(raw string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	beam.Init()
	p, s := beam.NewPipelineWithRoot()
	Build(s, cfg)
	if _, err := RunPrism(context.Background(), p); err != nil {
		fmt.Fprintln(os.Stderr, "child job:", err)
		return 1
	}
	return 0
}

// child is the streaming job running in a child process.
type child struct {
	started, killed time.Time
	cmd             *exec.Cmd
	mu              sync.Mutex
	logs            bytes.Buffer
	done            chan struct{}
}

func startChild(t *testing.T, cfg Config) *child {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), started: time.Now().UTC()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.logs.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
		cmd.Wait()
	}()
	return c
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.killed = time.Now().UTC()
}

// timeOfDay formats the times the kill test logs, to compare with the
// warehouse's processed_at.
const timeOfDay = "15:04:05.000000"

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

// TestKillAndRestart runs the streaming job in a child process while events
// flow, SIGKILLs it at random points three times, starting it again each
// time, and then checks what the warehouse holds against a sequential
// replay: every event stored, none applied twice, stock exact per key, and
// per key one alert per crossing after dedup by alert_id. It runs once per
// restore scope, the full replay (local default) and the bounded one
// (Dataflow's default), with data whose event times are 1, 9 and 30 days
// old: no verdict may depend on the age of the data.
func TestKillAndRestart(t *testing.T) {
	for _, scope := range []string{stock.ScopeFull, stock.ScopeRecent} {
		for _, days := range []int{1, 9, 30} {
			t.Run(fmt.Sprintf("%s/%dd", scope, days), func(t *testing.T) {
				killAndRestart(t, scope, clock.Now().AddDate(0, 0, -days).UTC().Truncate(time.Hour))
			})
		}
	}
}

func killAndRestart(t *testing.T, scope string, from time.Time) {
	slowtest.Skip(t, "kills and restarts a streaming job: about a minute")
	st := newStack(t)
	ctx := context.Background()
	dir := t.TempDir()

	// A feed with more events than the sample and the same keys, over the
	// day from from.
	gen := synth.Config{Events: 2500, SKUs: 20, Locations: 3, Seed: 11, InvalidEvery: 101, Start: from}
	var csvData bytes.Buffer
	if err := synth.Generate(&csvData, gen); err != nil {
		t.Fatal(err)
	}
	snapPath, thPath := filepath.Join(dir, "state.json"), filepath.Join(dir, "thresholds.csv")
	if err := snapshot.Write(ctx, snapPath, synth.Snapshot(gen)); err != nil {
		t.Fatal(err)
	}
	var th bytes.Buffer
	if err := synth.WriteThresholds(&th, gen); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(thPath, th.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	data := csvData.Bytes()
	want := replayWith(t, data, snapPath, thPath)
	start := snapshotStockOf(t, snapPath)
	valid := validIDs(t, data)

	cfg := st.config()
	cfg.Snapshot, cfg.Thresholds, cfg.Restore, cfg.RestoreScope = snapPath, thPath, true, scope
	cfg.MaxMessages = 50 // small bundles: more of them in flight at a kill

	sink := consumeAlerts(t, st)
	published := st.publishInBackground(t, data, 4*time.Millisecond)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("kill points drawn with seed %d", seed)
	stored := func() int {
		ids, err := countIDs(ctx, st.warehouse)
		if err != nil {
			return -1
		}
		return len(ids)
	}
	const kills = 3
	var c *child
	for i := range kills {
		c = startChild(t, cfg)
		before := stored()
		// Let this run store something, then kill it at a random point.
		waitFor(t, 90*time.Second, fmt.Sprintf("run %d to store events", i+1), func() (bool, string) {
			if c.exited() {
				t.Fatalf("run %d exited:\n%s", i+1, c.log())
			}
			n := stored()
			// 50 more, or all there are: a run before may have stored
			// nearly everything before its kill.
			return n > min(before+50, len(valid)-1), fmt.Sprintf("%d stored, %d before this run", n, before)
		})
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		n := stored()
		c.kill()
		t.Logf("kill %d: SIGKILL at %s with %d of %d valid events stored (run started %s)", i+1,
			c.killed.Format(timeOfDay), n, len(valid), c.started.Format(timeOfDay))
	}
	c = startChild(t, cfg)
	t.Logf("last run started %s", c.started.Format(timeOfDay))
	defer c.kill()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last run's warnings and errors:\n%s", tailMatching(c.log(), 40, "level=WARN", "level=ERROR"))
		}
	})
	<-published
	// Publish the first rows again as new messages: stored before the
	// kills, they must be recognised from the restored ledgers.
	again := firstRows(data, 300)
	st.publishPaced(ctx, t, again, 0)
	republished := publishable(t, again)
	waitFor(t, 180*time.Second, "every event stored after the last restart", func() (bool, string) {
		if c.exited() {
			t.Fatalf("last run exited:\n%s", c.log())
		}
		n := stored()
		return n >= len(valid), fmt.Sprintf("%d of %d", n, len(valid))
	})
	invalid := publishable(t, data) - len(valid)
	deadLettered := func() int64 {
		return queryInt(t, st.warehouse, `SELECT count(DISTINCT message_id) AS n FROM dead_letters`)
	}
	allMessages := int64(len(valid) + invalid + republished)
	waitFor(t, 60*time.Second, "every message stored", func() (bool, string) {
		n := queryInt(t, st.warehouse, `SELECT count(DISTINCT message_id) AS n FROM adjustments`) + deadLettered()
		return n >= allMessages, fmt.Sprintf("%d of %d", n, allMessages)
	})

	// Nothing lost, nothing applied twice.
	ids, err := countIDs(ctx, st.warehouse)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for id := range valid {
		if !ids[id] {
			lost++
		}
	}
	twice := queryInt(t, st.warehouse, `SELECT count(*) AS n FROM (SELECT event_id FROM adjustments
		WHERE status IN ('APPLIED', 'SUPERSEDED') GROUP BY event_id HAVING count(*) > 1) AS t`)
	dupRows := queryInt(t, st.warehouse, `SELECT count(*) AS n FROM adjustments WHERE status = 'DUPLICATE'`)
	if lost != 0 {
		t.Errorf("%d of %d valid events never stored", lost, len(valid))
	}
	if twice != 0 {
		t.Errorf("%d events applied more than once", twice)
	}
	againInvalid := republished - len(validIDs(t, again))
	if n := deadLettered(); n != int64(invalid+againInvalid) {
		t.Errorf("%d messages dead-lettered, want the %d invalid events", n, invalid+againInvalid)
	}
	if dupRows < int64(republished-againInvalid) {
		t.Errorf("%d adjustments marked DUPLICATE, want at least the %d valid events published again", dupRows, republished-againInvalid)
	}
	// Counts reconcile: every message published is in adjustments or
	// dead_letters, once per message id.
	messages := queryInt(t, st.warehouse, `SELECT count(DISTINCT message_id) AS n FROM adjustments`) + deadLettered()
	if want := int64(len(valid) + invalid + republished); messages != want {
		t.Errorf("%d messages stored, %d published", messages, want)
	}

	// Stock per key.
	got, err := finalStock(ctx, st.warehouse)
	if err != nil {
		t.Fatal(err)
	}
	if d := stockDiff(got, want, start); d != "" {
		t.Errorf("stock differs from the replay: %s", d)
		logKeyHistory(t, st.warehouse, got, want, start)
	}

	// Alerts: after dedup by alert_id, per key one alert per crossing,
	// ending at the severity of the final stock; and each reached the topic.
	rows, err := warehouse.QueryRows(ctx, st.warehouse, `SELECT alert_id, sku, location_id, severity, previous_severity,
		on_hand, threshold, event_id, event_time, alert_time FROM low_stock_alerts`)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*inventoryv1.LowStockAlert{}
	for _, r := range rows {
		a := commit.AlertProto(warehouse.AlertRow{AlertID: r["alert_id"].(string), SKU: r["sku"].(string),
			LocationID: r["location_id"].(string), Severity: r["severity"].(string), PreviousSeverity: r["previous_severity"].(string),
			OnHand: r["on_hand"].(int64), Threshold: r["threshold"].(int64), EventID: r["event_id"].(string),
			EventTime: r["event_time"].(time.Time), AlertTime: r["alert_time"].(time.Time)})
		if old, ok := byID[a.GetAlertId()]; ok && alertTime(old).Before(alertTime(a)) {
			continue // keep the first
		}
		byID[a.GetAlertId()] = a
	}
	alerts := slices.Collect(func(yield func(*inventoryv1.LowStockAlert) bool) {
		for _, a := range byID {
			if !yield(a) {
				return
			}
		}
	})
	if msg := checkChains(alerts, want); msg != "" {
		t.Errorf("alerts after dedup: %s", msg)
	}
	waitFor(t, 30*time.Second, "alerts on the topic", func() (bool, string) {
		onTopic := map[string]bool{}
		for _, id := range sink.ids() {
			onTopic[id] = true
		}
		missing := 0
		for id := range byID {
			if !onTopic[id] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d stored alerts not on low-stock-consumer", missing, len(byID))
	})
	t.Logf("%d kills; %d events (%d valid, %d invalid) and %d published again: lost %d, applied twice %d, dropped as duplicates %d; "+
		"%d alert rows, %d distinct alert ids, %d alert messages on the topic; replay raises %d alerts",
		kills, len(valid)+invalid, len(valid), invalid, republished, lost, twice, dupRows, len(rows), len(byID), len(sink.ids()), len(want.alerts))
}

// logKeyHistory logs, for up to two keys whose stock differs, what the
// warehouse holds for them: the evidence a failure needs.
func logKeyHistory(t *testing.T, dir string, got map[event.Key]int64, want expected, start map[event.Key]int64) {
	t.Helper()
	n := 0
	for k, w := range want.stock {
		g, ok := got[k]
		if !ok {
			g = start[k]
		}
		if g == w || n == 2 {
			continue
		}
		n++
		where := fmt.Sprintf("sku = '%s' AND location_id = '%s'", k.SKU, k.LocationID)
		for _, q := range []string{
			`SELECT event_id, message_id, reason, quantity, event_time, status, ingest_time FROM adjustments WHERE ` + where + ` ORDER BY ingest_time`,
			`SELECT event_id, previous_on_hand, on_hand, processed_at FROM stock_levels WHERE ` + where + ` ORDER BY processed_at`,
		} {
			rows, err := warehouse.QueryRows(context.Background(), dir, q)
			if err != nil {
				t.Logf("%v: %v", k, err)
				continue
			}
			var b strings.Builder
			for _, r := range rows {
				fmt.Fprintln(&b, r)
			}
			t.Logf("%v (got %d, want %d), %s:\n%s", k, g, w, q, b.String())
		}
	}
}

// tailMatching returns the last n lines of log that contain any of subs.
func tailMatching(log string, n int, subs ...string) string {
	var out []string
	for line := range strings.Lines(log) {
		if slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(line, s) }) {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "")
}

// firstRows returns the header and the first n rows of a CSV.
func firstRows(data []byte, n int) []byte {
	end := 0
	for i := 0; i <= n && end < len(data); i++ {
		j := bytes.IndexByte(data[end:], '\n')
		if j < 0 {
			return data
		}
		end += j + 1
	}
	return data[:end]
}

// publishable counts the rows publishPaced publishes: those the CSV reader
// parses, valid or not.
func publishable(t *testing.T, data []byte) int {
	cr, err := event.NewCSVReader(bytes.NewReader(data), "rows")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		var a event.Adjustment
		err := cr.Next(&a)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err == nil {
			n++
		}
	}
}

func queryInt(t *testing.T, dir, sql string) int64 {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), dir, sql)
	if err != nil {
		t.Fatal(err)
	}
	return rows[0]["n"].(int64)
}
