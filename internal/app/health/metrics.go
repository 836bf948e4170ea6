package health

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricPrefix starts the name of every metric MetricsHandler serves.
const metricPrefix = "inventory_"

// MetricsHandler serves src's current snapshot in the Prometheus text
// format (what `inventory up` serves at /metrics). Every scrape reads
// src.Snapshot; a failed read is answered 500.
func MetricsHandler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}

// collector turns a snapshot into Prometheus metrics.
type collector struct{ src Source }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricPrefix+name, help, labels, nil)
}

var (
	eventsDesc = desc("events_total",
		"Events the streaming job received and their outcome since it started (received = applied + duplicate + dead_lettered; superseded is part of applied).", "outcome")
	alertsDesc        = desc("alerts_total", "Low-stock alert rows raised since the streaming job started (every change of severity).")
	backlogDesc       = desc("backlog_messages", "Undelivered messages on the events subscription.")
	oldestDesc        = desc("oldest_unacked_message_age_seconds", "Age of the oldest undelivered message on the events subscription (0: none).")
	latencyDesc       = desc("publish_to_stored_latency_seconds", "Publish-to-stored latency over the events stored in the last minute (0: none).", "quantile")
	lastCommitDesc    = desc("last_commit_timestamp_seconds", "Unix time of the last successful warehouse commit (0: none since start).")
	stalledDesc       = desc("stalled", "1 when nothing has been stored for a while although the backlog is not empty.")
	stalledForDesc    = desc("stalled_seconds", "How long nothing has been stored with a backlog, when stalled (else 0).")
	streamUpDesc      = desc("stream_up", "1 while the streaming job runs.")
	nightlyDesc       = desc("nightly_last_run_info", "The last nightly run the trigger knows of (value 1), by report date and state.", "date", "state")
	nightlyFinishDesc = desc("nightly_last_run_finished_timestamp_seconds", "Unix time the last nightly run finished (0: running or none).")
)

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{eventsDesc, alertsDesc, backlogDesc, oldestDesc, latencyDesc, lastCommitDesc,
		stalledDesc, stalledForDesc, streamUpDesc, nightlyDesc, nightlyFinishDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.src.Snapshot(ctx)
	if err != nil {
		slog.Warn("health: /metrics: no snapshot", "err", err)
		ch <- prometheus.NewInvalidMetric(eventsDesc, err)
		return
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, o := range []struct {
		name string
		n    int64
	}{{"received", s.Received}, {"applied", s.Applied}, {"duplicate", s.Duplicate}, {"superseded", s.Superseded}, {"dead_lettered", s.DeadLettered}} {
		counter(eventsDesc, o.n, o.name)
	}
	counter(alertsDesc, s.Alerts)
	gauge(backlogDesc, float64(s.Backlog))
	gauge(oldestDesc, s.OldestUnacked.Seconds())
	gauge(latencyDesc, s.LatencyP50.Seconds(), "0.5")
	gauge(latencyDesc, s.LatencyP99.Seconds(), "0.99")
	gauge(lastCommitDesc, unixSeconds(s.LastCommit))
	gauge(stalledDesc, boolValue(s.Stalled))
	gauge(stalledForDesc, s.StalledFor.Seconds())
	gauge(streamUpDesc, boolValue(s.Stream == "running"))
	if n := s.LastNightly; n.Date != "" {
		gauge(nightlyDesc, 1, n.Date, n.State)
		gauge(nightlyFinishDesc, unixSeconds(n.Finished))
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
