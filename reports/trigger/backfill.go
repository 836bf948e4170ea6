package trigger

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// MaxBackfillDays bounds a backfill range: a longer one is most likely a typo.
const MaxBackfillDays = 366

// Backfill is a range of report dates run one after the other: each date is
// launched as POST /v1/nightly?date= would (idempotent: a date done already
// is not run again), and the next one starts when it is done, since each day
// opens from the day before. The first failure stops it.
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

// backfills holds the server's backfill: one at a time.
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

func (b *backfills) update(f func(*Backfill)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b.cur)
}

// backfill answers POST /v1/nightly?from=&to=: 202 with the plan, run in
// the background; 400 for a bad range, 422 for a range starting before the
// first day with data, 409 while another backfill runs.
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
	if s.cfg.Earliest != nil {
		first, ok, err := s.cfg.Earliest(r.Context())
		switch {
		case err != nil:
			s.log.ErrorContext(r.Context(), "backfill: finding the first day with data failed", "error", err)
			writeError(w, http.StatusBadGateway, fmt.Sprintf("find the first day with data: %v", err))
			return
		case !ok:
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("from %s: the warehouse has no data yet", dates[0]))
			return
		case dates[0] < first:
			writeError(w, http.StatusUnprocessableEntity,
				fmt.Sprintf("from %s is before the first day with data in the warehouse (%s)", dates[0], first))
			return
		}
	}
	now := s.cfg.Now().UTC()
	bf := &Backfill{From: dates[0], To: dates[len(dates)-1], Dates: dates, State: StateRunning, Done: []string{},
		CreatedAt: now, UpdatedAt: now}
	s.backfills.mu.Lock()
	if c := s.backfills.cur; c != nil && c.State.Active() {
		cur := *c
		s.backfills.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":    fmt.Sprintf("a backfill from %s to %s is running (at %s)", cur.From, cur.To, cur.Current),
			"backfill": cur})
		return
	}
	s.backfills.cur = bf
	s.backfills.mu.Unlock()
	s.log.InfoContext(r.Context(), "nightly backfill started", "from", bf.From, "to", bf.To, "days", len(dates),
		"caller", callerOf(r))
	// The backfill outlives the request (it takes one nightly run per day).
	go s.runBackfill(context.WithoutCancel(r.Context()))
	cur, _ := s.backfills.get()
	writeJSON(w, http.StatusAccepted, cur)
}

// backfillDates checks a range and returns its dates in order.
func (s *server) backfillDates(from, to string, nFrom, nTo int) ([]string, error) {
	switch {
	case nFrom > 1 || nTo > 1:
		return nil, errors.New("from and to may be given once each")
	case from == "" || to == "":
		return nil, errors.New("a backfill needs both from and to (YYYY-MM-DD)")
	}
	f, err := ParseDate(from)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	t, err := ParseDate(to)
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
	if n > MaxBackfillDays {
		return nil, fmt.Errorf("from %s to %s is %d days: at most %d", from, to, n, MaxBackfillDays)
	}
	dates := make([]string, n)
	for i := range dates {
		dates[i] = f.AddDate(0, 0, i).Format(DateLayout)
	}
	return dates, nil
}

// runBackfill launches the backfill's dates one after the other, each when
// the one before is done.
func (s *server) runBackfill(ctx context.Context) {
	bf, _ := s.backfills.get()
	fail := func(date, msg string) {
		s.log.ErrorContext(ctx, "nightly backfill stopped", "from", bf.From, "to", bf.To, "date", date, "error", msg)
		s.backfills.update(func(b *Backfill) {
			b.State, b.Error, b.UpdatedAt = StateFailed, fmt.Sprintf("%s: %s", date, msg), s.cfg.Now().UTC()
		})
	}
	for _, date := range bf.Dates {
		s.backfills.update(func(b *Backfill) { b.Current, b.UpdatedAt = date, s.cfg.Now().UTC() })
		s.launching <- struct{}{}
		run, err := s.launcher.Launch(ctx, date)
		<-s.launching
		for err == nil && run.State.Active() {
			time.Sleep(s.cfg.PollInterval)
			run, err = s.launcher.Lookup(ctx, date)
		}
		if err != nil {
			fail(date, err.Error())
			return
		}
		if perr := s.cfg.Store.Put(ctx, run); perr != nil {
			s.log.WarnContext(ctx, "recording nightly run failed", "date", date, "job_id", run.JobID, "error", perr)
		}
		if run.State != StateDone {
			fail(date, fmt.Sprintf("run %s ended %s %s", run.JobID, run.State, run.Error))
			return
		}
		s.backfills.update(func(b *Backfill) { b.Done, b.UpdatedAt = append(b.Done, date), s.cfg.Now().UTC() })
	}
	s.backfills.update(func(b *Backfill) { b.State, b.Current, b.UpdatedAt = StateDone, "", s.cfg.Now().UTC() })
	s.log.InfoContext(ctx, "nightly backfill done", "from", bf.From, "to", bf.To, "days", len(bf.Dates))
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
