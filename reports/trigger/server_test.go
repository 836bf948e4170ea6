package trigger_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inventory-events/inventory/reports/trigger"
)

// gatedRunner is a RunFunc whose runs block until released, returning the
// error queued for their date.
type gatedRunner struct {
	mu      sync.Mutex
	calls   []string
	release chan struct{}
	errs    map[string]error
}

func newGatedRunner() *gatedRunner {
	return &gatedRunner{release: make(chan struct{}), errs: map[string]error{}}
}

func (g *gatedRunner) run(ctx context.Context, date string) (string, error) {
	g.mu.Lock()
	g.calls = append(g.calls, date)
	err := g.errs[date]
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if err != nil {
		return "", err
	}
	return "prism-job-" + date, nil
}

func (g *gatedRunner) callCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

// fixedNow is 2026-11-25 01:30 UTC: still 2026-11-24 in New York.
var fixedNow = time.Date(2026, 11, 25, 1, 30, 0, 0, time.UTC)

func newTestServer(t *testing.T, run trigger.RunFunc) (http.Handler, *trigger.LocalLauncher) {
	t.Helper()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	l := trigger.NewLocalLauncher(run, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close launcher: %v", err)
		}
	})
	h := trigger.NewServer(trigger.Config{Location: ny, Now: func() time.Time { return fixedNow }}, l, nil)
	return h, l
}

func do(t *testing.T, h http.Handler, method, target, contentType, body string) (*httptest.ResponseRecorder, trigger.Run) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var run trigger.Run
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(rec.Body.Bytes(), &run)
	}
	return rec, run
}

func TestLaunchDates(t *testing.T) {
	tests := []struct {
		name        string
		target      string
		contentType string
		body        string
		wantCode    int
		wantDate    string
		wantErr     string
	}{
		{name: "default is yesterday in the zone", target: "/v1/nightly", wantCode: 202, wantDate: "2026-11-23"},
		{name: "scheduler body", target: "/v1/nightly", contentType: "application/json", body: "{}", wantCode: 202, wantDate: "2026-11-23"},
		{name: "query date", target: "/v1/nightly?date=2026-11-20", wantCode: 202, wantDate: "2026-11-20"},
		{name: "today in the zone", target: "/v1/nightly?date=2026-11-24", wantCode: 202, wantDate: "2026-11-24"},
		{name: "json date", target: "/v1/nightly", contentType: "application/json", body: `{"date":"2024-02-29"}`, wantCode: 202, wantDate: "2024-02-29"},
		{name: "form date", target: "/v1/nightly", contentType: "application/x-www-form-urlencoded", body: "date=2026-01-01", wantCode: 202, wantDate: "2026-01-01"},
		{name: "same date twice", target: "/v1/nightly?date=2026-11-20", contentType: "application/json", body: `{"date":"2026-11-20"}`, wantCode: 202, wantDate: "2026-11-20"},
		{name: "future (tomorrow in the zone)", target: "/v1/nightly?date=2026-11-25", wantCode: 400, wantErr: "future"},
		{name: "no such day", target: "/v1/nightly?date=2026-02-30", wantCode: 400, wantErr: "out of range"},
		{name: "month 13", target: "/v1/nightly?date=2026-13-01", wantCode: 400, wantErr: "out of range"},
		{name: "compact", target: "/v1/nightly?date=20261124", wantCode: 400, wantErr: "YYYY-MM-DD"},
		{name: "trailing text", target: "/v1/nightly?date=2026-11-24T00:00:00Z", wantCode: 400, wantErr: "YYYY-MM-DD"},
		{name: "path characters", target: "/v1/nightly?date=..%2F..%2Fetc", wantCode: 400, wantErr: "YYYY-MM-DD"},
		{name: "empty date", target: "/v1/nightly?date=", wantCode: 400, wantErr: "empty"},
		{name: "empty form date", target: "/v1/nightly", contentType: "application/x-www-form-urlencoded", body: "date=", wantCode: 400, wantErr: "empty"},
		{name: "empty json date", target: "/v1/nightly", contentType: "application/json", body: `{"date":""}`, wantCode: 400, wantErr: "empty"},
		{name: "json date not a string", target: "/v1/nightly", contentType: "application/json", body: `{"date":20261124}`, wantCode: 400, wantErr: "decode JSON"},
		{name: "repeated date", target: "/v1/nightly?date=2026-11-20&date=2026-11-21", wantCode: 400, wantErr: "more than once"},
		{name: "query and body differ", target: "/v1/nightly?date=2026-11-20", contentType: "application/json", body: `{"date":"2026-11-21"}`, wantCode: 400, wantErr: "differ"},
		{name: "unknown json field", target: "/v1/nightly", contentType: "application/json", body: `{"date":"2026-11-20","force":true}`, wantCode: 400, wantErr: "unknown field"},
		{name: "json trailing data", target: "/v1/nightly", contentType: "application/json", body: `{} {}`, wantCode: 400, wantErr: "trailing"},
		{name: "not json", target: "/v1/nightly", contentType: "application/json", body: `date=2026-11-20`, wantCode: 400, wantErr: "decode JSON"},
		{name: "other form field", target: "/v1/nightly", contentType: "application/x-www-form-urlencoded", body: "when=now", wantCode: 400, wantErr: "only carry date"},
		{name: "unsupported content type", target: "/v1/nightly", contentType: "text/csv", body: "2026-11-20", wantCode: 400, wantErr: "content type"},
		{name: "body too large", target: "/v1/nightly", contentType: "application/json", body: `{"date":"` + strings.Repeat("9", 5000) + `"}`, wantCode: 413, wantErr: "larger than 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGatedRunner()
			h, _ := newTestServer(t, g.run)
			rec, run := do(t, h, "POST", tc.target, tc.contentType, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %s", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantErr != "" {
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.wantErr) {
					t.Fatalf("error = %q (%v), want it to contain %q", e.Error, err, tc.wantErr)
				}
				if g.callCount() != 0 {
					t.Fatalf("a rejected request launched a run")
				}
				return
			}
			if run.Date != tc.wantDate || run.JobName != "nightly-summary-"+tc.wantDate || run.State != trigger.StateRunning || run.Existing {
				t.Fatalf("run = %+v, want a new running run for %s", run, tc.wantDate)
			}
		})
	}
}

func TestLaunchIsIdempotentPerDate(t *testing.T) {
	g := newGatedRunner()
	h, l := newTestServer(t, g.run)

	rec, first := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", "")
	if rec.Code != http.StatusAccepted || first.JobID == "" {
		t.Fatalf("first launch: %d %s", rec.Code, rec.Body)
	}
	// A retry while running returns the running run.
	rec, again := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", "")
	if rec.Code != http.StatusOK || again.JobID != first.JobID || !again.Existing || again.State != trigger.StateRunning {
		t.Fatalf("retry while running: %d %+v, want 200 with job %s", rec.Code, again, first.JobID)
	}
	// Concurrent triggers for another date start exactly one run.
	var wg sync.WaitGroup
	ids := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, r := do(t, h, "POST", "/v1/nightly?date=2026-11-21", "", "")
			ids <- r.JobID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("concurrent triggers gave job ids %v, want one", seen)
	}

	close(g.release) // let the runs finish
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g.callCount() != 2 {
		t.Fatalf("runner called %d times, want 2", g.callCount())
	}

	rec, status := do(t, h, "GET", "/v1/nightly/2026-11-20", "", "")
	if rec.Code != http.StatusOK || status.State != trigger.StateDone || status.Result != "prism-job-2026-11-20" || status.JobID != first.JobID {
		t.Fatalf("status after run: %d %+v", rec.Code, status)
	}
	// A done date is not run again.
	rec, done := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", "")
	if rec.Code != http.StatusOK || done.JobID != first.JobID || done.State != trigger.StateDone || !done.Existing {
		t.Fatalf("trigger after done: %d %+v", rec.Code, done)
	}
	if g.callCount() != 2 {
		t.Fatalf("runner called %d times after a done date was triggered, want 2", g.callCount())
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/nightly", nil))
	var list struct{ Runs []trigger.Run }
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Runs) != 2 || list.Runs[0].Date != "2026-11-21" {
		t.Fatalf("list: %d %s (%v)", rec.Code, rec.Body, err)
	}
}

func TestFailedRunIsRetried(t *testing.T) {
	g := newGatedRunner()
	g.errs["2026-11-20"] = errors.New("prism: pipeline failed")
	h, l := newTestServer(t, g.run)

	_, first := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", "")
	close(g.release)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec, st := do(t, h, "GET", "/v1/nightly/2026-11-20", "", "")
	if rec.Code != 200 || st.State != trigger.StateFailed || !strings.Contains(st.Error, "pipeline failed") {
		t.Fatalf("status of failed run: %d %+v", rec.Code, st)
	}
	g.mu.Lock()
	delete(g.errs, "2026-11-20")
	g.mu.Unlock()
	rec, second := do(t, h, "POST", "/v1/nightly?date=2026-11-20", "", "")
	if rec.Code != http.StatusAccepted || second.JobID == first.JobID || second.Existing {
		t.Fatalf("retry after failure: %d %+v, want a new run (first %s)", rec.Code, second, first.JobID)
	}
}

func TestStatusAndHealth(t *testing.T) {
	h, _ := newTestServer(t, newGatedRunner().run)
	tests := []struct {
		method, target string
		wantCode       int
		wantBody       string
	}{
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/v1/nightly/2026-11-20", 404, "no nightly run"},
		{"GET", "/v1/nightly/2026-11-31", 400, "out of range"},
		{"GET", "/v1/nightly/yesterday", 400, "YYYY-MM-DD"},
		{"DELETE", "/v1/nightly/2026-11-20", 405, ""},
		{"PUT", "/v1/nightly", 405, ""},
		{"GET", "/v2/nightly", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			rec, _ := do(t, h, tc.method, tc.target, "", "")
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Fatalf("%s %s = %d %q, want %d containing %q", tc.method, tc.target, rec.Code, rec.Body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestLocalLauncherCloseCancelsRuns(t *testing.T) {
	g := newGatedRunner()
	l := trigger.NewLocalLauncher(g.run, nil)
	if _, err := l.Launch(context.Background(), "2026-11-20"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	run, err := l.Lookup(ctx, "2026-11-20")
	if err != nil || run.State != trigger.StateCancelled {
		t.Fatalf("after close: %+v %v, want CANCELLED", run, err)
	}
	if _, err := l.Launch(ctx, "2026-11-21"); err == nil {
		t.Fatal("launch after close succeeded")
	}
}

func TestLocalLauncherPanicFailsRun(t *testing.T) {
	l := trigger.NewLocalLauncher(func(context.Context, string) (string, error) { panic("boom") }, nil)
	defer l.Close(context.Background())
	if _, err := l.Launch(context.Background(), "2026-11-20"); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	run, _ := l.Lookup(context.Background(), "2026-11-20")
	if run.State != trigger.StateFailed || !strings.Contains(run.Error, "boom") {
		t.Fatalf("run = %+v, want FAILED with the panic", run)
	}
}
