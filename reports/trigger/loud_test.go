package trigger_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inventory-events/inventory/reports/trigger"
)

// waitingServer is a server that waits for its runs (Config.Wait), as in
// production, over a local launcher running run.
func waitingServer(t *testing.T, run trigger.RunFunc, wait time.Duration) http.Handler {
	t.Helper()
	l := trigger.NewLocalLauncher(run, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	cfg := backfillConfig("2026-11-01")
	cfg.Wait = wait
	return trigger.NewServer(cfg, l, nil)
}

// TestFailuresAreLoud: with Wait, a run that fails (a nightly job that
// refuses its day, say) is answered 500, not 202, so that Scheduler retries
// it; the retry runs it again and, once it succeeds, answers 200. A run
// still going when Wait is up is answered 503 with Retry-After, and the
// retry joins it rather than starting another.
func TestFailuresAreLoud(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	fail := true
	h := waitingServer(t, func(ctx context.Context, date string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if fail {
			return "", errors.New("nightly: refused")
		}
		return "report", nil
	}, 10*time.Second)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return runs
	}
	rec, _ := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", "")
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "ended FAILED") {
		t.Fatalf("a failed run = %d %s, want 500", rec.Code, rec.Body)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if rec, run := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", ""); rec.Code != 200 || run.State != trigger.StateDone {
		t.Fatalf("the retry = %d %s, want 200 DONE", rec.Code, rec.Body)
	}
	if n := count(); n != 2 {
		t.Errorf("%d runs, want 2 (the failure, then the retry)", n)
	}
	// Done already: 200 at once, not run again.
	if rec, _ := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", ""); rec.Code != 200 || count() != 2 {
		t.Errorf("a third call = %d (%d runs), want 200 and no new run", rec.Code, count())
	}

	g := newGatedRunner()
	h = waitingServer(t, g.run, 30*time.Millisecond)
	rec, _ = do(t, h, "POST", "/v1/nightly?date=2026-11-21", "", "")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a run still going = %d %v %s, want 503 with Retry-After", rec.Code, rec.Header(), rec.Body)
	}
	close(g.release)
	// Scheduler's retries, until one answers 200.
	for i := 0; ; i++ {
		rec, _ := do(t, h, "POST", "/v1/nightly?date=2026-11-21", "", "")
		if rec.Code == 200 {
			break
		}
		if rec.Code != http.StatusServiceUnavailable || i > 100 {
			t.Fatalf("retry %d = %d %s, want 503 then 200", i, rec.Code, rec.Body)
		}
	}
	if n := g.started("2026-11-21"); n != 1 {
		t.Errorf("the run started %d times, want once: the retries join it", n)
	}
}

// TestSingleDateBeforeTheData: a date before the first day with data is
// refused 422, the same as a backfill starting there (it used to launch,
// down to 0001-01-01); yesterday by the clock, before the stream's first
// day, is a night with nothing to report (200, nothing run); a warehouse
// without any data refuses both.
func TestSingleDateBeforeTheData(t *testing.T) {
	tests := []struct {
		name, target, earliest string
		code                   int
		body                   string
	}{
		{"before the data", "/v1/nightly?date=2026-10-31", "2026-11-01", 422, "2026-10-31 is before the first day with data in the warehouse (2026-11-01)"},
		{"year 1", "/v1/nightly?date=0001-01-01", "2026-11-01", 422, "0001-01-01 is before the first day"},
		{"range with the same start", "/v1/nightly?from=2026-10-31&to=2026-11-02", "2026-11-01", 422, "from 2026-10-31 is before the first day"},
		{"yesterday, before the data", "/v1/nightly", "2026-11-25", 200, `"skipped"`},
		{"no data at all, explicit", "/v1/nightly?date=2026-11-20", "", 422, "the warehouse has no data yet"},
		{"no data at all, yesterday", "/v1/nightly", "", 422, "the warehouse has no data yet"},
		{"the first day", "/v1/nightly?date=2026-11-01", "2026-11-01", 202, `"RUNNING"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &orderedRunner{}
			h := newBackfillServer(t, o.run, tc.earliest)
			rec, _ := do(t, h, "POST", tc.target, "", "")
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("= %d %s, want %d %s", rec.Code, rec.Body, tc.code, tc.body)
			}
			if tc.code != 202 {
				time.Sleep(10 * time.Millisecond)
				if o.trace() != "" {
					t.Errorf("a refused date ran: %s", o.trace())
				}
			}
		})
	}
}

// TestLocalRunsAreCapped: 20 parallel POSTs of different dates start at
// most MaxRunning nightly runs; the others are answered 429 with
// Retry-After.
func TestLocalRunsAreCapped(t *testing.T) {
	g := newGatedRunner()
	l := trigger.NewLocalLauncher(g.run, nil)
	t.Cleanup(func() {
		close(g.release)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	srv := httptest.NewServer(trigger.NewServer(trigger.Config{Location: time.UTC, Now: func() time.Time { return fixedNow }}, l, nil))
	defer srv.Close()
	codes := make(chan *http.Response, 20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			date := time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC).Format(trigger.DateLayout)
			resp, err := http.Post(srv.URL+"/v1/nightly?date="+date, "application/json", nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp
		})
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for resp := range codes {
		n[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if n[http.StatusAccepted] != trigger.DefaultMaxRunning || n[http.StatusTooManyRequests] != 20-trigger.DefaultMaxRunning {
		t.Errorf("answers %v, want %d accepted and the rest 429", n, trigger.DefaultMaxRunning)
	}
	if c := g.callCount(); c > trigger.DefaultMaxRunning {
		t.Errorf("%d runs started, want at most %d", c, trigger.DefaultMaxRunning)
	}
}
