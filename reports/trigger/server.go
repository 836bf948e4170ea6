package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/clock"
)

// Config configures the trigger's HTTP handlers.
type Config struct {
	// Location is the time zone of report dates; the default date is
	// yesterday there. Nil means UTC.
	Location *time.Location
	// Auth wraps the /v1/ routes (RequireOIDC in production). Nil: no check,
	// as in the local stack. /healthz is never wrapped.
	Auth func(http.Handler) http.Handler
	// Store records runs. Nil: a new memoryStore.
	Store Store
	// MaxBodyBytes bounds a request body. Zero: 4 KiB.
	MaxBodyBytes int64
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Earliest returns the first report date (YYYY-MM-DD) with data in the
	// warehouse, ok false when it has none: a date or a backfill starting
	// before it is refused (422). Nil: not checked.
	Earliest func(ctx context.Context) (date string, ok bool, err error)
	// PollInterval is how often a waiting request checks its run. Zero:
	// 10 s.
	PollInterval time.Duration
	// Wait is how long POST /v1/nightly?date= waits for its run to end, so
	// that a failed run is answered as a failure (500) and the caller
	// (Cloud Scheduler) retries it: 200 when the run is done, 503 with
	// Retry-After while it still runs (the retry finds the same run). Zero:
	// answer as soon as the run is launched (202), as the local stack does.
	Wait time.Duration
	// BackfillBudget is how long one backfill request works before it
	// answers (202 with where it is; the caller repeats the request). Zero:
	// 90 s. Keep it under the request timeout of the platform (Cloud Run).
	BackfillBudget time.Duration
}

// retryAfter is the Retry-After of a request that should be repeated.
const retryAfter = "30"

type server struct {
	cfg      Config
	launcher Launcher
	log      *slog.Logger
	// launching serialises launches so two triggers for one date cannot race
	// past the launcher's existence check within this instance; across
	// instances the engine's unique job name does the same.
	launching chan struct{}
	backfills backfills
}

// NewServer returns the trigger's handler:
//
//	POST /v1/nightly          launch (or return) the run for ?date= / {"date":..} / yesterday
//	POST /v1/nightly?from=&to= backfill: run the dates in order (see Backfill)
//	GET  /v1/nightly/backfill the latest backfill
//	GET  /v1/nightly          runs recorded by this instance, newest first
//	GET  /v1/nightly/{date}   status of the run for date
//	GET  /healthz             liveness
func NewServer(cfg Config, launcher Launcher, logger *slog.Logger) http.Handler {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Store == nil {
		cfg.Store = newMemoryStore()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 10
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 10 * time.Second
	}
	if cfg.BackfillBudget <= 0 {
		cfg.BackfillBudget = 90 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{cfg: cfg, launcher: launcher, log: logger, launching: make(chan struct{}, 1)}

	api := http.NewServeMux()
	api.HandleFunc("POST /v1/nightly", s.launch)
	api.HandleFunc("GET /v1/nightly", s.list)
	api.HandleFunc("GET /v1/nightly/{date}", s.status)
	api.HandleFunc("GET /v1/nightly/backfill", s.backfillStatus)
	var apiHandler http.Handler = api
	if cfg.Auth != nil {
		apiHandler = cfg.Auth(api)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("/v1/", apiHandler)
	return mux
}

func (s *server) launch(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Has("from") || q.Has("to") {
		s.backfill(w, r)
		return
	}
	date, implicit, err := s.requestedDate(w, r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errBodyTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}
	if code, msg := s.checkEarliest(r.Context(), date); code != 0 {
		if implicit && code == http.StatusUnprocessableEntity && msg != noData {
			// Yesterday, by the clock, is before the stream's first day: the
			// first night after the stream started. Nothing to report.
			s.log.WarnContext(r.Context(), "nightly: yesterday is before the first day with data; nothing to run", "date", date)
			writeJSON(w, http.StatusOK, map[string]string{"date": date, "skipped": msg})
			return
		}
		writeError(w, code, msg)
		return
	}

	run, err := s.launchDate(r.Context(), date)
	if err != nil {
		s.answerLaunchError(w, r, date, err)
		return
	}
	if !run.Existing {
		s.log.InfoContext(r.Context(), "nightly run launched", "date", date, "job_id", run.JobID,
			"job_name", run.JobName, "engine", run.Engine, "caller", callerOf(r))
	}
	if s.cfg.Wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Wait)
		run, err = s.await(ctx, run)
		cancel()
		if err != nil && r.Context().Err() == nil {
			s.answerLaunchError(w, r, date, err)
			return
		}
	}
	switch {
	case run.State == StateDone:
		writeJSON(w, http.StatusOK, run)
	case !run.State.Active():
		s.log.ErrorContext(r.Context(), "nightly run failed", "date", date, "job_id", run.JobID, "state", run.State, "error", run.Error)
		writeJSON(w, http.StatusInternalServerError, map[string]any{
			"error": fmt.Sprintf("the nightly run for %s ended %s; a new request runs it again", date, run.State), "run": run})
	case s.cfg.Wait > 0:
		// Not a success yet: the caller's retry finds this run and waits on.
		w.Header().Set("Retry-After", retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": fmt.Sprintf("the nightly run for %s is still %s; repeat the request", date, run.State), "run": run})
	case run.Existing:
		writeJSON(w, http.StatusOK, run)
	default:
		writeJSON(w, http.StatusAccepted, run)
	}
}

// noData is the refusal of a warehouse that holds no data at all.
const noData = "the warehouse has no data yet"

// checkEarliest refuses (422) a date before the first day with data in the
// warehouse, the same way for a single date and for a backfill's start. It
// returns 0 when the date may run.
func (s *server) checkEarliest(ctx context.Context, date string) (int, string) {
	if s.cfg.Earliest == nil {
		return 0, ""
	}
	first, ok, err := s.cfg.Earliest(ctx)
	switch {
	case err != nil:
		s.log.ErrorContext(ctx, "finding the first day with data failed", "error", err)
		return http.StatusBadGateway, "could not find the first day with data in the warehouse; see the service's log"
	case !ok:
		return http.StatusUnprocessableEntity, noData
	case date < first:
		return http.StatusUnprocessableEntity, fmt.Sprintf("%s is before the first day with data in the warehouse (%s)", date, first)
	}
	return 0, ""
}

// launchDate launches (or finds) the run for date and records it.
func (s *server) launchDate(ctx context.Context, date string) (Run, error) {
	select {
	case s.launching <- struct{}{}:
	case <-ctx.Done():
		return Run{}, fmt.Errorf("waiting for another launch: %w", ctx.Err())
	}
	run, err := s.launcher.Launch(ctx, date)
	<-s.launching
	if err != nil {
		return Run{}, err
	}
	if err := s.cfg.Store.Put(ctx, run); err != nil {
		s.log.WarnContext(ctx, "recording nightly run failed", "date", date, "job_id", run.JobID, "error", err)
	}
	return run, nil
}

// await polls run until it ends or ctx is done, and returns its latest
// state (the last one seen when ctx ends first, with no error).
func (s *server) await(ctx context.Context, run Run) (Run, error) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for run.State.Active() {
		select {
		case <-ctx.Done():
			return run, nil
		case <-t.C:
		}
		next, err := s.launcher.Lookup(ctx, run.Date)
		if err != nil {
			if ctx.Err() != nil {
				return run, nil
			}
			return run, err
		}
		existing := run.Existing
		run = next
		run.Existing = existing
	}
	if err := s.cfg.Store.Put(ctx, run); err != nil {
		s.log.WarnContext(ctx, "recording nightly run failed", "date", run.Date, "job_id", run.JobID, "error", err)
	}
	return run, nil
}

// answerLaunchError answers a failed launch or lookup: 429 with
// Retry-After when the launcher is at its limit of runs, else 502 with a
// short message; the engine's own words go to the log, not to the caller.
func (s *server) answerLaunchError(w http.ResponseWriter, r *http.Request, date string, err error) {
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many nightly runs at once; retry %s later", date))
		return
	}
	s.log.ErrorContext(r.Context(), "nightly launch failed", "date", date, "error", err)
	writeError(w, http.StatusBadGateway, fmt.Sprintf("launching the nightly run for %s failed; see the service's log", date))
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	date := r.PathValue("date")
	if _, err := parseDate(date); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	run, err := s.launcher.Lookup(r.Context(), date)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "no nightly run for "+date)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "nightly status lookup failed", "date", date, "error", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("looking up the nightly run for %s failed; see the service's log", date))
		return
	}
	if err := s.cfg.Store.Put(r.Context(), run); err != nil {
		s.log.WarnContext(r.Context(), "recording nightly run failed", "date", date, "job_id", run.JobID, "error", err)
	}
	run.Existing = false
	writeJSON(w, http.StatusOK, run)
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	runs, err := s.cfg.Store.List(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

var errBodyTooLarge = errors.New("request body too large")

// requestedDate reads the report date from the query (?date=), a form or JSON
// body, or defaults to yesterday (implicit). The body is bounded; the date
// must be a real calendar date, not in the future.
func (s *server) requestedDate(w http.ResponseWriter, r *http.Request) (date string, implicit bool, err error) {
	date, err = s.parseRequestDate(w, r)
	if err == nil && date == "" {
		return Yesterday(s.cfg.Now(), s.cfg.Location), true, nil
	}
	return date, false, err
}

func (s *server) parseRequestDate(w http.ResponseWriter, r *http.Request) (string, error) {
	q := r.URL.Query()
	if len(q["date"]) > 1 {
		return "", errors.New("date given more than once")
	}
	date := q.Get("date")

	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", fmt.Errorf("%w: larger than %d bytes", errBodyTooLarge, tooBig.Limit)
		}
		return "", fmt.Errorf("read request body: %w", err)
	}
	bodyDate, err := dateFromBody(r.Header.Get("Content-Type"), body)
	if err != nil {
		return "", err
	}
	switch {
	case bodyDate != "" && date != "" && bodyDate != date:
		return "", fmt.Errorf("date %q in the query and %q in the body differ", date, bodyDate)
	case bodyDate != "":
		date = bodyDate
	case date == "" && q.Has("date"):
		return "", errors.New("date is empty")
	}

	if date == "" {
		return "", nil
	}
	d, err := parseDate(date)
	if err != nil {
		return "", err
	}
	y, m, dd := s.cfg.Now().In(s.cfg.Location).Date()
	if today := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC); d.After(today) {
		return "", fmt.Errorf("date %s is in the future", date)
	}
	return date, nil
}

// dateFromBody accepts an empty body, a JSON object {"date": "..."} (Cloud
// Scheduler sends "{}"), or a form with a date field.
func dateFromBody(contentType string, body []byte) (string, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return "", nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return "", fmt.Errorf("decode form body: %w", err)
		}
		if len(vals["date"]) > 1 {
			return "", errors.New("date given more than once")
		}
		if len(vals) > 1 || (len(vals) == 1 && !vals.Has("date")) {
			return "", errors.New("form body may only carry date")
		}
		if vals.Has("date") && vals.Get("date") == "" {
			return "", errors.New("date is empty")
		}
		return vals.Get("date"), nil
	case "application/json", "":
		var req struct {
			Date *string `json:"date"`
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return "", fmt.Errorf("decode JSON body: %w", err)
		}
		if dec.More() {
			return "", errors.New("decode JSON body: trailing data")
		}
		if req.Date == nil {
			return "", nil
		}
		if *req.Date == "" {
			return "", errors.New("date is empty")
		}
		return *req.Date, nil
	default:
		return "", fmt.Errorf("unsupported content type %q", mt)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// ctxKey keys values the middleware hands to handlers.
type ctxKey int

const callerKey ctxKey = iota

// Caller returns the verified caller's email set by RequireOIDC, if any.
func Caller(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(callerKey).(string)
	return s, ok
}

func callerOf(r *http.Request) string {
	if c, ok := Caller(r.Context()); ok {
		return c
	}
	return r.Header.Get("User-Agent")
}
