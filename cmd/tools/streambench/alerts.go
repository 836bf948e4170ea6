package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/names"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// latencySeed is the synth seed of the latency phase's events (their ids
// start with evt-3-).
const latencySeed = 3

// alertReader pulls low-stock-consumer and records publish->alert latency.
type alertReader struct {
	mu        sync.Mutex
	latencies []latency
	markers   map[string]time.Time
	unstamped int // alerts of events with no publish stamp
}

// latency is the publish->alert time of one event's alert.
type latency struct {
	id string
	d  time.Duration
}

func (e *env) readAlerts(ctx context.Context, st *stamps) *alertReader {
	ar := &alertReader{markers: map[string]time.Time{}}
	sub := pubsubio.SubscriptionPath(project, names.AlertSubscription)
	c := e.admin.Client.SubscriptionAdminClient
	go func() {
		for ctx.Err() == nil {
			resp, err := c.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 1000})
			if err != nil {
				continue
			}
			now := time.Now()
			var acks []string
			for _, rm := range resp.GetReceivedMessages() {
				acks = append(acks, rm.GetAckId())
				var al inventoryv1.LowStockAlert
				if protojson.Unmarshal(rm.GetMessage().GetData(), &al) != nil {
					continue
				}
				ar.mu.Lock()
				if strings.HasPrefix(al.GetEventId(), "marker-") {
					ar.markers[al.GetEventId()] = now
				} else if t, ok := st.get(al.GetEventId()); ok {
					ar.latencies = append(ar.latencies, latency{al.GetEventId(), now.Sub(t)})
				} else {
					ar.unstamped++ // an event of the throughput phase
				}
				ar.mu.Unlock()
			}
			if len(acks) > 0 {
				c.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: acks})
			}
		}
	}()
	return ar
}

// waitMarkers waits for the alerts of ms and returns when the last came.
func (ar *alertReader) waitMarkers(ctx context.Context, ms []payload) (time.Time, error) {
	for {
		ar.mu.Lock()
		var last time.Time
		n := 0
		for _, m := range ms {
			if t, ok := ar.markers[m.id]; ok {
				n++
				if t.After(last) {
					last = t
				}
			}
		}
		ar.mu.Unlock()
		if n == len(ms) {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for markers: %d of %d: %w", n, len(ms), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// take returns the latencies recorded since the last take for events whose
// id starts with prefix, and how many others (alerts of an earlier phase
// arriving late, or again) it dropped.
func (ar *alertReader) take(prefix string) (l []time.Duration, others int) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	for _, x := range ar.latencies {
		if strings.HasPrefix(x.id, prefix) {
			l = append(l, x.d)
		} else {
			others++
		}
	}
	ar.latencies = nil
	others += ar.unstamped
	ar.unstamped = 0
	return l, others
}
