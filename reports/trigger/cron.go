package trigger

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/inventory-events/inventory/internal/clock"
)

// ParseCron parses a unix-cron spec (five fields, as Cloud Scheduler takes).
func ParseCron(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("cron spec %q: %w", spec, err)
	}
	return s, nil
}

// NextFire returns when spec fires next after t, in time zone tz.
func NextFire(spec, tz string, after time.Time) (time.Time, error) {
	s, err := ParseCron(spec)
	if err != nil {
		return time.Time{}, err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, fmt.Errorf("cron time zone: %w", err)
	}
	return s.Next(after.In(loc)), nil
}

// LocalCron is the local stack's Cloud Scheduler: it POSTs "{}" to a URL on a
// cron schedule in a time zone, with Cloud Scheduler's headers.
type LocalCron struct {
	c     *cron.Cron
	entry cron.EntryID
}

// StartLocalCron fires spec (e.g. DefaultSchedule) in time zone tz by POSTing
// to url (the trigger's /v1/nightly) until ctx is done or Stop is called.
// Failures are logged through slog.Default.
func StartLocalCron(ctx context.Context, spec, tz, url string) (*LocalCron, error) {
	sched, err := ParseCron(spec)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("cron time zone: %w", err)
	}
	client := &http.Client{Timeout: 3 * time.Minute}
	c := cron.New(cron.WithLocation(loc))
	lc := &LocalCron{c: c}
	lc.entry = c.Schedule(sched, cron.FuncJob(func() {
		fireLocal(ctx, client, url, clock.Now().Truncate(time.Second))
	}))
	c.Start()
	go func() {
		<-ctx.Done()
		c.Stop()
	}()
	return lc, nil
}

// Next is when the cron fires next.
func (l *LocalCron) Next() time.Time { return l.c.Entry(l.entry).Next }

// Stop stops the cron and waits for a firing in progress.
func (l *LocalCron) Stop() { <-l.c.Stop().Done() }

func fireLocal(ctx context.Context, client *http.Client, url string, scheduled time.Time) {
	log := slog.Default()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte("{}")))
	if err != nil {
		log.ErrorContext(ctx, "local cron: build request", "url", url, "error", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Google-Cloud-Scheduler")
	req.Header.Set("X-CloudScheduler", "true")
	req.Header.Set("X-CloudScheduler-JobName", SchedulerJobID)
	if !scheduled.IsZero() {
		req.Header.Set("X-CloudScheduler-ScheduleTime", scheduled.UTC().Format(time.RFC3339))
	}
	resp, err := client.Do(req)
	if err != nil {
		log.ErrorContext(ctx, "local cron: trigger failed", "url", url, "error", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode >= 300 {
		log.ErrorContext(ctx, "local cron: trigger refused", "url", url, "status", resp.StatusCode, "body", string(body))
	}
}
