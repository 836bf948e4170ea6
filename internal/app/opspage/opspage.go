// Package opspage is the live operations page that `inventory up` serves on
// its operations port: the pipeline's health with a chart of the last
// minutes, the keys at or below their reorder threshold, the alert feed
// (server-sent events from a subscription of its own on low-stock-alerts),
// the threshold rules with a form that publishes a change exactly as
// `inventory thresholds set` does, and the latest nightly reports.
//
// The page is server-rendered with html/template; the chart is an SVG that
// go-chart draws on the server; a few lines of plain JavaScript refresh the
// health panel and append the alerts the feed pushes.
package opspage

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/broker"
)

// Config is what the page reads and where it publishes.
type Config struct {
	// Health gives the signals; nil shows that none are wired.
	Health health.Source
	// Project is the Pub/Sub project; the clients honour
	// PUBSUB_EMULATOR_HOST. AlertTopic and ThresholdTopic default to the
	// product's names.
	Project        string
	AlertTopic     string
	ThresholdTopic string
	// Warehouse is the local warehouse directory; Reports the report root,
	// served read-only under /reports/.
	Warehouse string
	Reports   string
	// Thresholds and Snapshot are the thresholds file and the starting
	// stock the streaming job started from; DefaultThreshold the threshold
	// of keys no rule names (0: ledger.DefaultThreshold).
	Thresholds       string
	Snapshot         string
	DefaultThreshold int64
	Logger           *slog.Logger
}

func (c *Config) defaults() {
	c.AlertTopic = cmp.Or(c.AlertTopic, names.AlertTopic)
	c.ThresholdTopic = cmp.Or(c.ThresholdTopic, names.ThresholdTopic)
	if c.DefaultThreshold <= 0 {
		c.DefaultThreshold = ledger.DefaultThreshold
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

//go:embed assets
var assets embed.FS

var page = template.Must(template.New("page.html").Funcs(funcs).ParseFS(assets, "assets/page.html"))

// Page is the operations page registered on a mux; Close stops its alert
// subscription.
type Page struct {
	cfg    Config
	admin  *broker.Admin
	feed   *feed
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changes []published // the form's recent changes, newest first
}

// published is a change the form published, shown after the redirect.
type published struct {
	Change  ledger.Change
	Warning string
}

// Register adds the page's routes to mux:
//
//	GET  /                     the page (?q= searches keys and rules)
//	GET  /ops/health           the health panel alone, for the refresh
//	GET  /ops/chart.svg        the chart of the last minutes
//	GET  /ops/alerts           the alert feed, text/event-stream
//	POST /ops/thresholds       the threshold form
//	GET  /ops/assets/          the stylesheet and the script
//	GET  /reports/             the report root, read-only
//
// It opens Pub/Sub clients for cfg.Project and subscribes to the alert
// topic in the background until Close.
func Register(ctx context.Context, mux *http.ServeMux, cfg Config) (*Page, error) {
	cfg.defaults()
	admin, err := broker.NewAdmin(ctx, cfg.Project)
	if err != nil {
		return nil, fmt.Errorf("opspage: %w", err)
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Page{cfg: cfg, admin: admin, cancel: cancel, done: make(chan struct{}),
		feed: newFeed(admin, cfg.AlertTopic, cfg.Logger)}
	go func() {
		defer close(p.done)
		p.feed.run(fctx)
	}()
	static, _ := fs.Sub(assets, "assets")
	guard := func(h http.Handler) http.Handler { return loopbackNames(h) }
	mux.Handle("GET /{$}", guard(http.HandlerFunc(p.serveIndex)))
	mux.Handle("GET /ops/health", guard(http.HandlerFunc(p.serveHealth)))
	mux.Handle("GET /ops/chart.svg", guard(http.HandlerFunc(p.serveChart)))
	mux.Handle("GET /ops/alerts", guard(http.HandlerFunc(p.feed.serveEvents)))
	mux.Handle("POST /ops/thresholds", guard(http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.serveSet))))
	mux.Handle("GET /ops/assets/", guard(http.StripPrefix("/ops/assets/", http.FileServerFS(static))))
	mux.Handle("GET /reports/", guard(http.StripPrefix("/reports/", http.FileServer(reportsDir(cfg.Reports)))))
	return p, nil
}

// Close stops the alert feed, deletes its subscription and closes the
// clients.
func (p *Page) Close(ctx context.Context) error {
	p.cancel()
	<-p.done
	return errors.Join(p.feed.close(ctx), p.admin.Close())
}

// loopbackNames refuses a request whose Host names something else than
// this machine (an IP address, localhost or the host name): a web page
// that makes its own domain resolve to 127.0.0.1 (DNS rebinding) cannot
// read the page or post the form.
func loopbackNames(h http.Handler) http.Handler {
	self, _ := os.Hostname()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if net.ParseIP(host) == nil && host != "localhost" && !strings.HasSuffix(host, ".localhost") && (self == "" || host != strings.ToLower(self)) {
			http.Error(w, "opspage: unknown host name "+host+"; open the page by IP address, localhost or this machine's name", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// reportsDir serves the report root without directory listings of dot
// files; http.FileServer serves GET and HEAD only.
type reportsDir string

func (d reportsDir) Open(name string) (http.File, error) {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return nil, fs.ErrNotExist
		}
	}
	return http.Dir(string(d)).Open(name)
}

// now is the page's clock.
func now() time.Time { return clock.Now() }
