package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	return trigger.NewServer(backfillConfig(earliest), l, nil)
}

func backfillConfig(earliest string) trigger.Config {
	return trigger.Config{Location: time.UTC, Now: func() time.Time { return fixedNow },
		PollInterval: time.Millisecond, BackfillBudget: 30 * time.Second,
		Earliest: func(context.Context) (string, bool, error) {
			return earliest, earliest != "", nil
		}}
}

// decodeBackfill reads a backfill answer (or its "backfill" member).
func decodeBackfill(t *testing.T, body []byte) trigger.Backfill {
	t.Helper()
	var bf trigger.Backfill
	var wrapped struct{ Backfill *trigger.Backfill }
	if err := json.Unmarshal(body, &wrapped); err == nil && wrapped.Backfill != nil {
		return *wrapped.Backfill
	}
	if err := json.Unmarshal(body, &bf); err != nil {
		t.Fatalf("backfill answer %s: %v", body, err)
	}
	return bf
}

// TestBackfillRunsDatesInOrder: one request runs the missing dates of the
// range in order, one at a time, each waited for, and answers 200 when all
// are done; a date done before is not run again.
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
	bf := decodeBackfill(t, rec.Body.Bytes())
	if rec.Code != 200 || bf.State != trigger.StateDone || strings.Join(bf.Done, " ") != "2026-11-20 2026-11-21 2026-11-22 2026-11-23" {
		t.Fatalf("backfill = %d %s, want 200 DONE with the 4 dates", rec.Code, rec.Body)
	}
	want := "start 2026-11-21, end 2026-11-21, start 2026-11-20, end 2026-11-20, " +
		"start 2026-11-22, end 2026-11-22, start 2026-11-23, end 2026-11-23"
	if got := o.trace(); got != want {
		t.Errorf("runs = %s\nwant %s (in order, one at a time, 2026-11-21 not again)", got, want)
	}
	if rec, _ := do(t, h, "GET", "/v1/nightly/backfill", "", ""); rec.Code != 200 || decodeBackfill(t, rec.Body.Bytes()).State != trigger.StateDone {
		t.Errorf("GET backfill = %d %s", rec.Code, rec.Body)
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

// TestBackfillStopsAtTheFirstFailure: a failed date is answered as a
// failure (500, naming it), the dates after it are not run, and the same
// request, once fixed, runs what is missing.
func TestBackfillStopsAtTheFirstFailure(t *testing.T) {
	o := &orderedRunner{fail: map[string]bool{"2026-11-21": true}}
	h := newBackfillServer(t, o.run, "2026-11-01")
	rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-22", "", "")
	bf := decodeBackfill(t, rec.Body.Bytes())
	if rec.Code != 500 || bf.State != trigger.StateFailed || strings.Join(bf.Done, " ") != "2026-11-20" ||
		!strings.Contains(bf.Error, "2026-11-21") || !strings.Contains(rec.Body.String(), "ended FAILED") {
		t.Errorf("backfill = %d %s, want 500 FAILED at 2026-11-21", rec.Code, rec.Body)
	}
	if strings.Contains(o.trace(), "2026-11-22") {
		t.Errorf("runs = %s: the date after the failure ran", o.trace())
	}
	// Fixed, the same range again runs what is missing.
	o.mu.Lock()
	o.fail = nil
	o.mu.Unlock()
	if rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-22", "", ""); rec.Code != 200 {
		t.Fatalf("backfill again = %d %s, want 200", rec.Code, rec.Body)
	}
	if n := strings.Count(o.trace(), "start 2026-11-20"); n != 1 {
		t.Errorf("2026-11-20 ran %d times, want once: %s", n, o.trace())
	}
}

// TestBackfillOutOfTime: a request that runs out of its budget answers 202
// with Retry-After and where it is; the run it left goes on, and the next
// request joins it rather than starting it again.
func TestBackfillOutOfTime(t *testing.T) {
	g := newGatedRunner()
	l := trigger.NewLocalLauncher(g.run, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	cfg := backfillConfig("2026-11-01")
	cfg.BackfillBudget = 50 * time.Millisecond
	h := trigger.NewServer(cfg, l, nil)
	rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-21", "", "")
	bf := decodeBackfill(t, rec.Body.Bytes())
	if rec.Code != 202 || rec.Header().Get("Retry-After") == "" || bf.Current != "2026-11-20" || len(bf.Done) != 0 {
		t.Fatalf("backfill out of time = %d %v %s, want 202 with Retry-After at 2026-11-20", rec.Code, rec.Header(), rec.Body)
	}
	close(g.release)
	cfg.BackfillBudget = 30 * time.Second
	h = trigger.NewServer(cfg, l, nil)
	if rec, _ := do(t, h, "POST", "/v1/nightly?from=2026-11-20&to=2026-11-21", "", ""); rec.Code != 200 {
		t.Fatalf("backfill again = %d %s, want 200", rec.Code, rec.Body)
	}
	if n := g.started("2026-11-20"); n != 1 {
		t.Errorf("2026-11-20 started %d times, want once", n)
	}
}

// engine is a Launcher whose runs live outside the service, as Dataflow
// jobs do: they outlive a trigger instance. Each run takes a few polls.
type engine struct {
	mu       sync.Mutex
	runs     map[string]*trigger.Run
	polls    map[string]int
	launches map[string]int
}

func newEngine() *engine {
	return &engine{runs: map[string]*trigger.Run{}, polls: map[string]int{}, launches: map[string]int{}}
}

func (e *engine) Launch(_ context.Context, date string) (trigger.Run, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.runs[date]; r != nil && (r.State.Active() || r.State == trigger.StateDone) {
		c := *r
		c.Existing = true
		return c, nil
	}
	e.launches[date]++
	r := &trigger.Run{Date: date, JobID: "job-" + date, JobName: trigger.JobName(date), State: trigger.StateRunning, Engine: "test"}
	e.runs[date] = r
	return *r, nil
}

func (e *engine) Lookup(_ context.Context, date string) (trigger.Run, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.runs[date]
	if r == nil {
		return trigger.Run{}, trigger.ErrNotFound
	}
	if e.polls[date]++; e.polls[date] >= 5 {
		r.State = trigger.StateDone
	}
	return *r, nil
}

// TestBackfillSurvivesAKilledInstance: the instance serving a backfill is
// stopped in the middle (its request cancelled, as when Cloud Run stops an
// instance); the caller repeats the request on a new instance until it
// answers 200. Every date is run, each exactly once.
func TestBackfillSurvivesAKilledInstance(t *testing.T) {
	eng := newEngine()
	const target = "/v1/nightly?from=2026-11-01&to=2026-11-10"
	first := trigger.NewServer(backfillConfig("2026-11-01"), eng, nil)
	ctx, kill := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		req := httptest.NewRequestWithContext(ctx, "POST", target, nil)
		rec := httptest.NewRecorder()
		first.ServeHTTP(rec, req)
		done <- rec.Code
	}()
	// Kill the instance once it is in the middle of the range.
	for {
		eng.mu.Lock()
		n := len(eng.runs)
		eng.mu.Unlock()
		if n >= 4 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	kill()
	<-done

	calls := 0
	for {
		calls++
		if calls > 20 {
			t.Fatal("the backfill never finished")
		}
		h := trigger.NewServer(backfillConfig("2026-11-01"), eng, nil) // a new instance each time
		rec, _ := do(t, h, "POST", target, "", "")
		if rec.Code == 200 {
			break
		}
		if rec.Code != 202 {
			t.Fatalf("backfill on a new instance = %d %s", rec.Code, rec.Body)
		}
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	for d := 1; d <= 10; d++ {
		date := fmt.Sprintf("2026-11-%02d", d)
		if r := eng.runs[date]; r == nil || r.State != trigger.StateDone || eng.launches[date] != 1 {
			t.Errorf("%s: run %+v launched %d times, want DONE, launched once", date, r, eng.launches[date])
		}
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

// started counts the runs of date the runner started.
func (g *gatedRunner) started(date string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, d := range g.calls {
		if d == date {
			n++
		}
	}
	return n
}
