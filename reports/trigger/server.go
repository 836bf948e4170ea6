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
	// Store records runs. Nil: a new MemoryStore.
	Store Store
	// MaxBodyBytes bounds a request body. Zero: 4 KiB.
	MaxBodyBytes int64
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Earliest returns the first report date (YYYY-MM-DD) with data in the
	// warehouse, ok false when it has none: a backfill starting before it
	// is refused (422). Nil: not checked.
	Earliest func(ctx context.Context) (date string, ok bool, err error)
	// PollInterval is how often a backfill checks the run it waits for.
	// Zero: 10 s.
	PollInterval time.Duration
}

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
		cfg.Store = NewMemoryStore()
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
	date, err := s.requestedDate(w, r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errBodyTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeError(w, code, err.Error())
		return
	}

	select {
	case s.launching <- struct{}{}:
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "request cancelled while waiting for another launch")
		return
	}
	run, err := s.launcher.Launch(r.Context(), date)
	<-s.launching
	if err != nil {
		s.log.ErrorContext(r.Context(), "nightly launch failed", "date", date, "error", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("launch nightly run for %s: %v", date, err))
		return
	}
	if err := s.cfg.Store.Put(r.Context(), run); err != nil {
		s.log.WarnContext(r.Context(), "recording nightly run failed", "date", date, "job_id", run.JobID, "error", err)
	}
	code := http.StatusAccepted
	if run.Existing {
		code = http.StatusOK
	} else {
		s.log.InfoContext(r.Context(), "nightly run launched", "date", date, "job_id", run.JobID,
			"job_name", run.JobName, "engine", run.Engine, "caller", callerOf(r))
	}
	writeJSON(w, code, run)
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	date := r.PathValue("date")
	if _, err := ParseDate(date); err != nil {
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
		writeError(w, http.StatusBadGateway, fmt.Sprintf("look up nightly run for %s: %v", date, err))
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
// body, or defaults to yesterday. The body is bounded; the date must be a real
// calendar date, not in the future.
func (s *server) requestedDate(w http.ResponseWriter, r *http.Request) (string, error) {
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
		return Yesterday(s.cfg.Now(), s.cfg.Location), nil
	}
	d, err := ParseDate(date)
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
