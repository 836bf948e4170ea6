package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inventory-events/inventory/reports/trigger"
)

// orderedRunner records when each run starts and ends, and fails the dates
// it is told to.
type orderedRunner struct {
	mu     sync.Mutex
	events []string // "start D" / "end D"
	fail   map[string]bool
}

func (o *orderedRunner) run(ctx context.Context, date string) (string, error) {
	o.log("start " + date)
	time.Sleep(5 * time.Millisecond) // long enough for an overlapping launch to show
	o.log("end " + date)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail[date] {
		return "", errors.New("boom")
	}
	return "ok " + date, nil
}

func (o *orderedRunner) log(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, s)
}

func (o *orderedRunner) trace() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.events, ", ")
}

func newBackfillServer(t *testing.T, run trigger.RunFunc, earliest string) http.Handler {
	t.Helper()
	l := trigger.NewLocalLauncher(run, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	return trigger.NewServer(trigger.Config{Location: time.UTC, Now: func() time.Time { return fixedNow },
		PollInterval: time.Millisecond,
		Earliest: func(context.Context) (string, bool, error) {
			return earliest, earliest != "", nil
		}}, l, nil)
}

// waitBackfill polls GET /v1/nightly/backfill until it is no longer running.
func waitBackfill(t *testing.T, h http.Handler) trigger.Backfill {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, _ := do(t, h, "GET", "/v1/nightly/backfill", "", "")
		var bf trigger.Backfill
		if err := json.Unmarshal(rec.Body.Bytes(), &bf); err != nil || rec.Code != 200 {
			t.Fatalf("GET backfill = %d %s", rec.Code, rec.Body)
		}
		if !bf.State.Active() {
			return bf
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill still running: %+v", bf)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBackfillRunsDatesInOrder(t *testing.T) {
	o := &orderedRunner{}
	h := newBackfillServer(t, o.run, "2026-11-01")
	if rec, _ := do(t, h, "GET", "/v1/nightly/backfill", "", ""); rec.Code != 404 {
		t.Errorf("GET backfill before any = %d, want 404", rec.Code)
	}
	// One date done before: the backfill does not run it again.
	if rec, _ := do(t, h, "POST", "/v1/nightly?date=2026-11-21", "", ""); rec.Code != 202 {
		t.Fatalf("launch 2026-11-21 = %d", rec.Code)
	}
	waitDone(t, h, "2026-11-21")

	rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-23", "", "")
	var bf trigger.Backfill
	if err := json.Unmarshal(rec.Body.Bytes(), &bf); rec.Code != 202 || err != nil ||
		strings.Join(bf.Dates, " ") != "2026-11-20 2026-11-21 2026-11-22 2026-11-23" || bf.State != trigger.StateRunning {
		t.Fatalf("backfill = %d %s", rec.Code, rec.Body)
	}
	bf = waitBackfill(t, h)
	if bf.State != trigger.StateDone || strings.Join(bf.Done, " ") != "2026-11-20 2026-11-21 2026-11-22 2026-11-23" {
		t.Errorf("backfill = %+v, want DONE with the 4 dates", bf)
	}
	want := "start 2026-11-21, end 2026-11-21, start 2026-11-20, end 2026-11-20, " +
		"start 2026-11-22, end 2026-11-22, start 2026-11-23, end 2026-11-23"
	if got := o.trace(); got != want {
		t.Errorf("runs = %s\nwant %s (in order, one at a time, 2026-11-21 not again)", got, want)
	}
	for _, d := range bf.Dates {
		if _, run := do(t, h, "GET", "/v1/nightly/"+d, "", ""); run.State != trigger.StateDone {
			t.Errorf("run %s = %+v, want DONE", d, run)
		}
	}
}

// waitDone polls a date's run until it is done.
func waitDone(t *testing.T, h http.Handler, date string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if _, run := do(t, h, "GET", "/v1/nightly/"+date, "", ""); run.State == trigger.StateDone {
			return
		}
	}
	t.Fatalf("run %s not done", date)
}

func TestBackfillStopsAtTheFirstFailure(t *testing.T) {
	o := &orderedRunner{fail: map[string]bool{"2026-11-21": true}}
	h := newBackfillServer(t, o.run, "2026-11-01")
	if rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-22", "", ""); rec.Code != 202 {
		t.Fatalf("backfill = %d %s", rec.Code, rec.Body)
	}
	bf := waitBackfill(t, h)
	if bf.State != trigger.StateFailed || strings.Join(bf.Done, " ") != "2026-11-20" ||
		!strings.Contains(bf.Error, "2026-11-21") || !strings.Contains(bf.Error, "boom") {
		t.Errorf("backfill = %+v, want FAILED at 2026-11-21 with its error", bf)
	}
	if strings.Contains(o.trace(), "2026-11-22") {
		t.Errorf("runs = %s: the date after the failure ran", o.trace())
	}
	// Fixed, the same range again runs what is missing.
	o.mu.Lock()
	o.fail = nil
	o.mu.Unlock()
	if rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-22", "", ""); rec.Code != 202 {
		t.Fatalf("backfill again = %d %s", rec.Code, rec.Body)
	}
	if bf := waitBackfill(t, h); bf.State != trigger.StateDone {
		t.Errorf("backfill again = %+v, want DONE", bf)
	}
	if n := strings.Count(o.trace(), "start 2026-11-20"); n != 1 {
		t.Errorf("2026-11-20 ran %d times, want once: %s", n, o.trace())
	}
}

func TestBackfillOneAtATime(t *testing.T) {
	g := newGatedRunner()
	h := newBackfillServer(t, g.run, "2026-11-01")
	if rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-21", "", ""); rec.Code != 202 {
		t.Fatalf("backfill = %d %s", rec.Code, rec.Body)
	}
	rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-10&to=2026-11-11", "", "")
	if rec.Code != 409 || !strings.Contains(rec.Body.String(), "a backfill from 2026-11-20 to 2026-11-21 is running") {
		t.Errorf("second backfill = %d %s, want 409 naming the running one", rec.Code, rec.Body)
	}
	close(g.release)
	if bf := waitBackfill(t, h); bf.State != trigger.StateDone {
		t.Errorf("backfill = %+v", bf)
	}
}

func TestBackfillRefusals(t *testing.T) {
	tests := []struct {
		name, target, earliest string
		code                   int
		err                    string
	}{
		{"before the data", "/v1/nightly?from=2026-10-31&to=2026-11-02", "2026-11-01", 422,
			"from 2026-10-31 is before the first day with data in the warehouse (2026-11-01)"},
		{"no data at all", "/v1/nightly?from=2026-11-01&to=2026-11-02", "", 422, "the warehouse has no data yet"},
		{"no to", "/v1/nightly?from=2026-11-01", "2026-11-01", 400, "needs both from and to"},
		{"no from", "/v1/nightly?to=2026-11-01", "2026-11-01", 400, "needs both from and to"},
		{"reversed", "/v1/nightly?from=2026-11-05&to=2026-11-01", "2026-11-01", 400, "to 2026-11-01 is before from 2026-11-05"},
		{"future", "/v1/nightly?from=2026-11-20&to=2026-11-26", "2026-11-01", 400, "to 2026-11-26 is in the future"},
		{"bad date", "/v1/nightly?from=2026-11-31&to=2026-12-01", "2026-11-01", 400, "from: date \"2026-11-31\""},
		{"too long", "/v1/nightly?from=2024-01-01&to=2026-11-01", "2020-01-01", 400, "at most 366"},
		{"with date", "/v1/nightly?date=2026-11-02&from=2026-11-01&to=2026-11-02", "2026-11-01", 400, "not both"},
		{"twice", "/v1/nightly?from=2026-11-01&from=2026-11-02&to=2026-11-03", "2026-11-01", 400, "once each"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &orderedRunner{}
			h := newBackfillServer(t, o.run, tc.earliest)
			rec, _ := do(t, h, "POST", tc.target, "", "")
			var e struct{ Error string }
			json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != tc.code || !strings.Contains(e.Error, tc.err) {
				t.Errorf("= %d %q, want %d %q", rec.Code, e.Error, tc.code, tc.err)
			}
			if o.trace() != "" {
				t.Errorf("a refused backfill ran %s", o.trace())
			}
		})
	}
}
