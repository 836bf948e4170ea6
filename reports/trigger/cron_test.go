package trigger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/reports/trigger"
)

func TestNextFire(t *testing.T) {
	tests := []struct {
		tz    string
		after time.Time
		want  string
	}{
		{"UTC", time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), "2026-11-25T03:00:00Z"},
		{"Europe/Berlin", time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), "2026-11-25T03:00:00+01:00"},
		{"Europe/Berlin", time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC), "2026-11-24T03:00:00+01:00"},
		// Summer time: 03:00 in Berlin is 01:00 UTC.
		{"Europe/Berlin", time.Date(2026, 7, 1, 0, 30, 0, 0, time.UTC), "2026-07-01T03:00:00+02:00"},
		{"America/New_York", time.Date(2026, 11, 24, 7, 59, 0, 0, time.UTC), "2026-11-24T03:00:00-05:00"},
	}
	for _, tc := range tests {
		got, err := trigger.NextFire(trigger.DefaultSchedule, tc.tz, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		if got.Format(time.RFC3339) != tc.want {
			t.Errorf("NextFire(%s, after %s) = %s, want %s", tc.tz, tc.after, got.Format(time.RFC3339), tc.want)
		}
	}
	if _, err := trigger.NextFire("0 3 * *", "UTC", time.Now()); err == nil {
		t.Error("four-field spec accepted")
	}
	if _, err := trigger.NextFire(trigger.DefaultSchedule, "Nowhere/Town", time.Now()); err == nil {
		t.Error("unknown zone accepted")
	}
}

// TestLocalCronFiresHandler runs the local cron at the real handler, on a
// one-second spec, and waits for the run it launches.
func TestLocalCronFiresHandler(t *testing.T) {
	dates := make(chan string, 4)
	l := trigger.NewLocalLauncher(func(_ context.Context, date string) (string, error) {
		dates <- date
		return "ok", nil
	}, nil)
	defer l.Close(context.Background())
	headers := make(chan http.Header, 4)
	api := trigger.NewServer(trigger.Config{}, l, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		api.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := trigger.StartLocalCron(ctx, "@every 1s", "Europe/Berlin", srv.URL+"/v1/nightly")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if next := c.Next(); next.IsZero() || next.Location().String() != "Europe/Berlin" {
		t.Errorf("Next = %v, want a time in Europe/Berlin", next)
	}
	select {
	case h := <-headers:
		if h.Get("User-Agent") != "Google-Cloud-Scheduler" || h.Get("X-CloudScheduler-JobName") != trigger.SchedulerJobID {
			t.Errorf("cron request headers = %v", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the local cron did not fire within 10s")
	}
	select {
	case d := <-dates:
		if want := trigger.Yesterday(clock.Now(), time.UTC); d != want {
			t.Errorf("cron launched %s, want %s", d, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cron's request launched no run")
	}
}

func TestStartLocalCronRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := trigger.StartLocalCron(ctx, "every night", "UTC", "http://127.0.0.1:1/v1/nightly"); err == nil {
		t.Error("bad spec accepted")
	}
	if _, err := trigger.StartLocalCron(ctx, trigger.DefaultSchedule, "Mars/Olympus", "http://127.0.0.1:1/v1/nightly"); err == nil {
		t.Error("bad zone accepted")
	}
}

func TestLoggerSeverity(t *testing.T) {
	var buf bytes.Buffer
	log := trigger.NewLogger(&buf, slog.LevelDebug)
	log.Debug("d")
	log.Info("i", "date", "2026-11-24")
	log.Warn("w")
	log.Error("e")
	want := []struct{ severity, message string }{{"DEBUG", "d"}, {"INFO", "i"}, {"WARNING", "w"}, {"ERROR", "e"}}
	dec := json.NewDecoder(&buf)
	for _, w := range want {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		if line["severity"] != w.severity || line["message"] != w.message || line["level"] != nil || line["msg"] != nil {
			t.Errorf("line = %v, want severity %s message %s", line, w.severity, w.message)
		}
	}
}

func ExampleJobName() {
	fmt.Println(trigger.JobName("2026-11-24"))
	// Output: nightly-summary-2026-11-24
}
