package opspage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/inventory-events/inventory/internal/app/rulechange"
	"github.com/inventory-events/inventory/internal/ledger"
)

var funcs = template.FuncMap{
	"lower": strings.ToLower,
	"query": url.QueryEscape,
	// clock is the time of day of a "YYYY-MM-DD hh:mm:ss" time.
	"clock": func(t string) string {
		if _, hms, ok := strings.Cut(t, " "); ok {
			return hms
		}
		return t
	},
}

// view is everything the page shows.
type view struct {
	Health healthView
	Feed   bool // the alert feed is subscribed
	Query  string

	Keys      []keyView
	KeysTotal int
	Rules     []ruleView
	RuleTotal int
	Alerts    []alertView
	Reports   []reportView
	Errors    []string // parts that could not be read

	Form     formView
	Done     *published // the change this page load follows
	Reports0 string     // the report root, as configured
}

// formView is the threshold form: its values and what went wrong.
type formView struct {
	SKU, Location, Threshold, By string
	Err                          string
}

// maxBy bounds the length of the form's "changed by".
const maxBy = 100

func (p *Page) serveIndex(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := formView{SKU: q.Get("sku"), Location: q.Get("location"), By: rulechange.Who()}
	if th := q.Get("threshold"); th != "" {
		form.Threshold = th
	}
	v := p.build(r.Context(), q.Get("q"), form)
	if id := q.Get("changed"); id != "" {
		v.Done = p.change(id)
	}
	p.render(w, http.StatusOK, "page.html", v)
}

// build reads every panel; a part that fails is named in Errors and
// left empty.
func (p *Page) build(ctx context.Context, q string, form formView) *view {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v := &view{Health: p.health(ctx), Feed: p.feed.Live(), Query: q, Form: form, Reports0: p.cfg.Reports}
	fail := func(what string, err error) {
		p.cfg.Logger.Warn("operations page: "+what, "err", err)
		v.Errors = append(v.Errors, what+": "+err.Error())
	}
	if rules, err := p.readRules(ctx); err != nil {
		fail("threshold rules", err)
	} else {
		v.Rules, v.RuleTotal = ruleList(rules, q)
		if v.Keys, v.KeysTotal, err = p.lowKeys(ctx, rules, q); err != nil {
			fail("keys at or below threshold", err)
		}
	}
	var err error
	if v.Alerts, err = p.storedAlerts(ctx); err != nil {
		fail("alerts", err)
	}
	if v.Reports, err = p.latestReports(); err != nil {
		fail("reports", err)
	}
	return v
}

func (p *Page) serveHealth(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, "health", &view{Health: p.health(r.Context()), Feed: p.feed.Live()})
}

func (p *Page) render(w http.ResponseWriter, code int, name string, v *view) {
	var buf bytes.Buffer
	if err := page.ExecuteTemplate(&buf, name, v); err != nil {
		p.cfg.Logger.Error("operations page: render", "err", err)
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// serveSet is the threshold form: the change is validated and published
// exactly as `inventory thresholds set` does it (rulechange), then the
// browser is sent back to the page, which says what was published. A
// refused change shows the page again with the form, its values and the
// reason (400). Cross-site posts never get here (Register).
func (p *Page) serveSet(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "threshold form: "+err.Error(), http.StatusBadRequest)
		return
	}
	form := formView{SKU: strings.TrimSpace(r.PostForm.Get("sku")), Location: strings.TrimSpace(r.PostForm.Get("location")),
		Threshold: strings.TrimSpace(r.PostForm.Get("threshold")), By: strings.TrimSpace(r.PostForm.Get("by"))}
	code := http.StatusBadRequest
	c, err := newChange(form)
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		warning := rulechange.Unseen(ctx, p.cfg.Warehouse, &c)
		if err = rulechange.Publish(ctx, p.cfg.Project, p.cfg.ThresholdTopic, &c); err == nil {
			p.cfg.Logger.Info("operations page: threshold change published", "change_id", c.ID, "sku", c.SKU,
				"location_id", c.LocationID, "threshold", c.Threshold, "by", c.By)
			p.remember(published{Change: c, Warning: warning})
			http.Redirect(w, r, "/?changed="+url.QueryEscape(c.ID)+"#rules", http.StatusSeeOther)
			return
		}
		code = http.StatusBadGateway // valid, but Pub/Sub did not take it
	}
	form.Err = err.Error()
	p.render(w, code, "page.html", p.build(r.Context(), "", form))
}

var errInput = errors.New("threshold form")

// newChange validates the form like the CLI validates its arguments
// (rulechange.New), and "changed by" besides: required, printable, at most
// maxBy characters (the CLI's comes from $USER@host).
func newChange(f formView) (ledger.Change, error) {
	switch {
	case f.By == "":
		return ledger.Change{}, fmt.Errorf("%w: say who makes the change", errInput)
	case len(f.By) > maxBy:
		return ledger.Change{}, fmt.Errorf("%w: \"changed by\" is longer than %d characters", errInput, maxBy)
	case strings.ContainsFunc(f.By, func(r rune) bool { return !unicode.IsPrint(r) }):
		return ledger.Change{}, fmt.Errorf("%w: \"changed by\" %q has characters that are not printable", errInput, f.By)
	}
	return rulechange.New(f.SKU, f.Location, f.Threshold, f.By, now())
}

// remember keeps c among the form's recent changes.
func (p *Page) remember(c published) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changes = slices.Insert(p.changes, 0, c)
	if len(p.changes) > 20 {
		p.changes = p.changes[:20]
	}
}

// change returns the recent change id, or nil.
func (p *Page) change(id string) *published {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.changes {
		if p.changes[i].Change.ID == id {
			c := p.changes[i]
			return &c
		}
	}
	return nil
}
