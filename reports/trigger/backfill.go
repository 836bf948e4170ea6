package trigger

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// maxBackfillDays bounds a backfill range: a longer one is most likely a typo.
const maxBackfillDays = 366

// Backfill is a range of report dates, and how far requests for it got.
//
// A backfill is driven by its caller, one bounded request at a time, so
// that no day is lost when an instance stops (Cloud Run throttles the CPU
// of an instance outside requests, and stops idle ones): each POST
// ?from=&to= walks the dates in order, skips those whose run is done (the
// launcher asks the engine, which outlives the instance), launches the
// next (idempotent per date: a run already active is joined, not started
// again) and waits for it, for at most Config.BackfillBudget; then it
// answers 200 when every date is done, 202 with Retry-After while some are
// left (the caller repeats the same request), or 500 naming the date whose
// run failed. A report is a function of the data, not of the days before
// it, so two callers on one range, or a restart, change no report.
type Backfill struct {
	From  string   `json:"from"`
	To    string   `json:"to"`
	Dates []string `json:"dates"`
	State State    `json:"state"`
	// Current is the date running now; Done are the dates finished, in order.
	Current   string    `json:"current,omitempty"`
	Done      []string  `json:"done"`
	Error     string    `json:"error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// backfills holds the latest backfill request's progress, for
// GET /v1/nightly/backfill.
type backfills struct {
	mu  sync.Mutex
	cur *Backfill
}

func (b *backfills) get() (Backfill, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return Backfill{}, false
	}
	c := *b.cur
	c.Done = append([]string{}, c.Done...)
	return c, true
}

func (b *backfills) set(bf Backfill) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bf.Done = append([]string{}, bf.Done...)
	b.cur = &bf
}

// backfill answers POST /v1/nightly?from=&to= (see Backfill): 200 when
// every date is done, 202 while some are left, 500 when a date's run
// failed; 400 for a bad range, 422 for a range starting before the first
// day with data, 429 when the launcher is at its limit of runs.
func (s *server) backfill(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("date") {
		writeError(w, http.StatusBadRequest, "give date, or from and to, not both")
		return
	}
	dates, err := s.backfillDates(q.Get("from"), q.Get("to"), len(q["from"]), len(q["to"]))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if code, msg := s.checkEarliest(r.Context(), dates[0]); code != 0 {
		writeError(w, code, "from "+msg)
		return
	}
	now := s.cfg.Now().UTC()
	bf := Backfill{From: dates[0], To: dates[len(dates)-1], Dates: dates, State: StateRunning, Done: []string{},
		CreatedAt: now, UpdatedAt: now}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.BackfillBudget)
	defer cancel()
	for _, date := range dates {
		bf.Current, bf.UpdatedAt = date, s.cfg.Now().UTC()
		s.backfills.set(bf)
		run, err := s.launcher.Lookup(ctx, date)
		if err != nil || run.State != StateDone {
			if run, err = s.launchDate(ctx, date); err == nil {
				if !run.Existing {
					s.log.InfoContext(ctx, "nightly backfill: run launched", "from", bf.From, "to", bf.To, "date", date,
						"job_id", run.JobID, "caller", callerOf(r))
				}
				run, err = s.await(ctx, run)
			}
		}
		switch {
		case err != nil && ctx.Err() == nil:
			bf.State, bf.Error = StateFailed, date+": the launch failed"
			s.backfills.set(bf)
			s.answerLaunchError(w, r, date, err)
			return
		case run.State == StateDone:
			bf.Done = append(bf.Done, date)
			continue
		case run.State.Active() || ctx.Err() != nil:
			// Out of time: the run goes on; the caller's next request
			// joins it.
			bf.UpdatedAt = s.cfg.Now().UTC()
			s.backfills.set(bf)
			w.Header().Set("Retry-After", retryAfter)
			writeJSON(w, http.StatusAccepted, bf)
			return
		default:
			bf.State, bf.UpdatedAt = StateFailed, s.cfg.Now().UTC()
			bf.Error = fmt.Sprintf("%s: run %s ended %s", date, run.JobID, run.State)
			s.backfills.set(bf)
			s.log.ErrorContext(r.Context(), "nightly backfill stopped", "from", bf.From, "to", bf.To, "date", date,
				"job_id", run.JobID, "state", run.State, "error", run.Error)
			writeJSON(w, http.StatusInternalServerError, map[string]any{
				"error":    fmt.Sprintf("the nightly run for %s ended %s; the backfill stopped there, and the same request resumes it", date, run.State),
				"backfill": bf})
			return
		}
	}
	bf.State, bf.Current, bf.UpdatedAt = StateDone, "", s.cfg.Now().UTC()
	s.backfills.set(bf)
	s.log.InfoContext(r.Context(), "nightly backfill done", "from", bf.From, "to", bf.To, "days", len(dates))
	writeJSON(w, http.StatusOK, bf)
}

// backfillDates checks a range and returns its dates in order.
func (s *server) backfillDates(from, to string, nFrom, nTo int) ([]string, error) {
	switch {
	case nFrom > 1 || nTo > 1:
		return nil, errors.New("from and to may be given once each")
	case from == "" || to == "":
		return nil, errors.New("a backfill needs both from and to (YYYY-MM-DD)")
	}
	f, err := parseDate(from)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	t, err := parseDate(to)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	y, m, d := s.cfg.Now().In(s.cfg.Location).Date()
	switch today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC); {
	case t.Before(f):
		return nil, fmt.Errorf("to %s is before from %s", to, from)
	case t.After(today):
		return nil, fmt.Errorf("to %s is in the future", to)
	}
	n := int(t.Sub(f).Hours()/24) + 1
	if n > maxBackfillDays {
		return nil, fmt.Errorf("from %s to %s is %d days: at most %d", from, to, n, maxBackfillDays)
	}
	dates := make([]string, n)
	for i := range dates {
		dates[i] = f.AddDate(0, 0, i).Format(DateLayout)
	}
	return dates, nil
}

// backfillStatus answers GET /v1/nightly/backfill with the latest backfill.
func (s *server) backfillStatus(w http.ResponseWriter, _ *http.Request) {
	bf, ok := s.backfills.get()
	if !ok {
		writeError(w, http.StatusNotFound, "no backfill since the service started")
		return
	}
	writeJSON(w, http.StatusOK, bf)
}
