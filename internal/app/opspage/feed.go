package opspage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/inventory-events/inventory/loaders/broker"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// subscriptionPrefix names the page's own subscriptions of the alert topic:
// the operators' low-stock-consumer is never read here.
const subscriptionPrefix = "ops-page-alerts-"

// recentAlerts is how many alerts the feed replays to a new listener, so
// that an alert published while the page was loading is not missed.
const recentAlerts = 50

// alertView is one alert as the page shows it and the feed sends it.
type alertView struct {
	ID        string `json:"id"`
	Time      string `json:"time"`
	Severity  string `json:"severity"`
	Previous  string `json:"previous"`
	SKU       string `json:"sku"`
	Location  string `json:"location"`
	OnHand    int64  `json:"on_hand"`
	Threshold int64  `json:"threshold"`
	EventID   string `json:"event_id"`
	// Order sorts alerts: the alert time, then the event time, as text.
	Order string `json:"order"`
}

// orderLayout writes the times of alertView.Order.
const orderLayout = "2006-01-02T15:04:05.000000"

func order(alertTime, eventTime time.Time) string {
	return alertTime.UTC().Format(orderLayout) + " " + eventTime.UTC().Format(orderLayout)
}

func viewOf(a *inventoryv1.LowStockAlert) alertView {
	at := a.GetAlertTime()
	alertTime, err := time.Parse(time.RFC3339Nano, at)
	if err == nil {
		at = alertTime.UTC().Format(timeLayout)
	}
	eventTime, _ := time.Parse(time.RFC3339Nano, a.GetEventTime())
	prev := ""
	if a.GetPreviousSeverity() != inventoryv1.LowStockAlert_SEVERITY_UNSPECIFIED {
		prev = a.GetPreviousSeverity().String()
	}
	return alertView{ID: a.GetAlertId(), Time: at, Severity: a.GetSeverity().String(), Previous: prev, SKU: a.GetSku(),
		Location: a.GetLocationId(), OnHand: a.GetOnHand(), Threshold: a.GetThreshold(), EventID: a.GetEventId(),
		Order: order(alertTime, eventTime)}
}

// feed pulls the alert topic through a subscription of its own and hands
// each alert to every listener of /ops/alerts.
type feed struct {
	admin *broker.Admin
	topic string
	sub   string // full path
	log   *slog.Logger

	mu        sync.Mutex
	recent    []alertView // oldest first
	listeners map[chan alertView]struct{}
	live      bool // the subscription exists and the last pull answered
	stopped   chan struct{}
}

func newFeed(admin *broker.Admin, topic string, log *slog.Logger) *feed {
	id := make([]byte, 6)
	rand.Read(id)
	return &feed{admin: admin, topic: topic, log: log, listeners: map[chan alertView]struct{}{}, stopped: make(chan struct{}),
		sub: pubsubio.SubscriptionPath(admin.Project, subscriptionPrefix+hex.EncodeToString(id))}
}

// run creates the subscription (retrying while Pub/Sub or the topic is not
// there) and pulls from it until ctx ends.
func (f *feed) run(ctx context.Context) {
	for ctx.Err() == nil {
		_, err := f.admin.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: f.sub, Topic: pubsubio.TopicPath(f.admin.Project, f.topic), AckDeadlineSeconds: 10,
			// A subscription left behind by a crash goes away by itself.
			ExpirationPolicy:         &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(24 * time.Hour)},
			MessageRetentionDuration: durationpb.New(10 * time.Minute),
		})
		if err == nil || status.Code(err) == codes.AlreadyExists {
			break
		}
		f.log.Warn("operations page: cannot subscribe to the alerts; retrying", "topic", f.topic, "err", err)
		if !sleep(ctx, 5*time.Second) {
			return
		}
	}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := f.admin.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: f.sub, MaxMessages: 100})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && pctx.Err() == nil {
			f.setLive(false)
			f.log.Warn("operations page: alert feed pull failed; retrying", "err", err)
			sleep(ctx, 2*time.Second)
			continue
		}
		f.setLive(true)
		var acks []string
		for _, rm := range resp.GetReceivedMessages() {
			acks = append(acks, rm.GetAckId())
			a, err := broker.DecodeAlert(rm.GetMessage())
			if err != nil {
				f.log.Warn("operations page: alert not shown", "err", err)
				continue
			}
			f.publish(viewOf(a))
		}
		if len(acks) > 0 {
			if err := f.admin.Client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: f.sub, AckIds: acks}); err != nil && ctx.Err() == nil {
				f.log.Warn("operations page: alert feed ack failed", "err", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (f *feed) setLive(v bool) {
	f.mu.Lock()
	f.live = v
	f.mu.Unlock()
}

// Live reports whether the feed is subscribed and Pub/Sub answers.
func (f *feed) Live() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

// publish keeps a in the recent alerts and sends it to every listener; a
// listener too slow to take it loses it (its page still lists it on the
// next load, from the warehouse).
func (f *feed) publish(a alertView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recent = append(f.recent, a)
	if len(f.recent) > recentAlerts {
		f.recent = f.recent[len(f.recent)-recentAlerts:]
	}
	for ch := range f.listeners {
		select {
		case ch <- a:
		default:
		}
	}
}

func (f *feed) listen() (chan alertView, []alertView) {
	ch := make(chan alertView, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners[ch] = struct{}{}
	return ch, append([]alertView(nil), f.recent...)
}

func (f *feed) forget(ch chan alertView) {
	f.mu.Lock()
	delete(f.listeners, ch)
	f.mu.Unlock()
}

// serveEvents streams alerts as server-sent events ("alert", the JSON of an
// alertView, its id as the event id): first the recent ones, then each as
// it arrives, with a comment every 15 s to keep the connection open.
func (f *feed) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ch, recent := f.listen()
	defer f.forget(ch)
	send := func(a alertView) error {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: alert\nid: %s\ndata: %s\n\n", a.ID, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	for _, a := range recent {
		if send(a) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-f.stopped:
			return
		case a := <-ch:
			if send(a) != nil {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// close ends every listener's stream and deletes the subscription.
func (f *feed) close(ctx context.Context) error {
	close(f.stopped)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := f.admin.Client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: f.sub})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("opspage: delete subscription %s: %w", f.sub, err)
	}
	return nil
}
