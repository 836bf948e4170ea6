package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/app/localstack"
	"github.com/inventory-events/inventory/loaders/warehouse"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/reports/trigger"
)

// pullAlerts pulls low-stock-consumer until it has as many distinct alerts
// as the low_stock_alerts table, and acks them.
func pullAlerts(ctx context.Context, stack *localstack.Stack, wh string) ([]*inventoryv1.LowStockAlert, error) {
	sub := "projects/" + stack.Admin.Project + "/subscriptions/low-stock-consumer"
	seen := map[string]*inventoryv1.LowStockAlert{}
	var order []string
	for {
		want, err := warehouse.QueryInt(ctx, wh, "SELECT count(DISTINCT alert_id) FROM low_stock_alerts")
		if err != nil {
			return nil, err
		}
		if int64(len(seen)) >= want && want > 0 {
			break
		}
		pctx, c := context.WithTimeout(ctx, 2*time.Second)
		resp, err := stack.Admin.Client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 1000})
		c()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("demo: waiting for alerts: %w", ctx.Err())
		}
		if err != nil {
			continue
		}
		var ids []string
		for _, m := range resp.GetReceivedMessages() {
			ids = append(ids, m.GetAckId())
			var a inventoryv1.LowStockAlert
			if err := protojson.Unmarshal(m.GetMessage().GetData(), &a); err != nil {
				return nil, fmt.Errorf("demo: alert %q: %w", m.GetMessage().GetData(), err)
			}
			if _, dup := seen[a.GetAlertId()]; !dup {
				seen[a.GetAlertId()] = &a
				order = append(order, a.GetAlertId())
			}
		}
		if len(ids) > 0 {
			if err := stack.Admin.Client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
				return nil, fmt.Errorf("demo: ack alerts: %w", err)
			}
		}
	}
	out := make([]*inventoryv1.LowStockAlert, 0, len(order))
	for _, id := range order {
		out = append(out, seen[id])
	}
	// In the order they happened, not the order they arrived.
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetEventTime() < out[j].GetEventTime() })
	return out, nil
}

func triggerNightly(ctx context.Context, base, date string) (trigger.Run, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/nightly?date="+url.QueryEscape(date), nil)
	return doRun(req)
}

func waitNightly(ctx context.Context, base, date string) (trigger.Run, error) {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/nightly/"+url.PathEscape(date), nil)
		run, err := doRun(req)
		if err != nil {
			return run, err
		}
		switch run.State {
		case trigger.StateDone, trigger.StateFailed, trigger.StateCancelled:
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, fmt.Errorf("demo: waiting for the nightly job: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func doRun(req *http.Request) (trigger.Run, error) {
	var run trigger.Run
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return run, fmt.Errorf("demo: trigger: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return run, fmt.Errorf("demo: trigger %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	if err := json.Unmarshal(body, &run); err != nil {
		return run, fmt.Errorf("demo: trigger response %q: %w", body, err)
	}
	return run, nil
}
