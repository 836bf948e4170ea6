package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/loaders/broker"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func newAlertsCmd(g *globals) *cobra.Command {
	var (
		sub, format string
		follow      bool
		idle        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Print low-stock alerts from low-stock-consumer as they arrive",
		Long: `alerts reads the low-stock-consumer subscription and prints each alert
(severity coloured on a terminal), acking what it printed. Without --follow it
prints what is waiting and exits once nothing arrives for --idle; with
--follow it runs until interrupted. --format=json prints one JSON object per
line (the LowStockAlert message).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("alerts: --format %q is neither table nor json", format)
			}
			ctx := cmd.Context()
			admin, err := broker.NewAdmin(ctx, g.Project)
			if err != nil {
				return err
			}
			defer admin.Close()
			// An unreachable Pub/Sub is an error, not "0 alerts".
			if err := probePubSub(ctx, admin); err != nil {
				return fmt.Errorf("alerts: %w", err)
			}
			p := &alertPrinter{w: cmd.OutOrStdout(), json: format == "json", color: isTerminal(cmd.OutOrStdout())}
			var watch *connWatch
			if follow {
				watch = &connWatch{w: cmd.ErrOrStderr(), probe: func(ctx context.Context) error { return probePubSub(ctx, admin) }}
			}
			n, err := followAlerts(ctx, admin.Client, pubsubio.SubscriptionPath(g.Project, sub), follow, idle, watch, p.print)
			if !follow {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d alerts\n", n)
			}
			if follow && ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&sub, "subscription", broker.DefaultNames().AlertSubscription, "subscription of the low-stock-alerts topic")
	f.StringVar(&format, "format", "table", "table or json")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing alerts as they arrive until interrupted")
	f.DurationVar(&idle, "idle", 2*time.Second, "without --follow: exit once no alert arrived for this long")
	return cmd
}

// followPull bounds one pull of --follow: how long a lost connection can go
// unnoticed when no alert arrives.
const followPull = 10 * time.Second

// connWatch tells, on w, when --follow loses Pub/Sub and when it is back:
// an empty pull and a dead emulator look alike, so a pull that ends with
// an error is followed by a probe.
type connWatch struct {
	w     io.Writer
	probe func(context.Context) error
	lost  bool
}

// failed is called after a pull that ended in an error. It reports whether
// Pub/Sub is unreachable (and says so once).
func (c *connWatch) failed(ctx context.Context) bool {
	err := c.probe(ctx)
	if ctx.Err() != nil {
		return false
	}
	if err == nil {
		c.ok()
		return false
	}
	if !c.lost {
		c.lost = true
		fmt.Fprintf(c.w, "alerts: connection lost: %v; retrying\n", err)
	}
	return true
}

// ok is called after a pull that answered.
func (c *connWatch) ok() {
	if c.lost {
		c.lost = false
		fmt.Fprintf(c.w, "alerts: connection to Pub/Sub at %s is back\n", pubsubHost())
	}
}

// followAlerts pulls alerts from sub, hands each to print and acks it once
// printed. It returns the number printed. Without follow it stops after a
// pull that waited idle for nothing. With follow, watch (when set) is told
// of each pull's outcome.
func followAlerts(ctx context.Context, c *pubsub.Client, sub string, follow bool, idle time.Duration, watch *connWatch,
	print func(*inventoryv1.LowStockAlert) error) (int, error) {
	n := 0
	for {
		wait := idle
		if follow {
			wait = followPull
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		resp, err := c.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 500})
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if watch != nil && err != nil && watch.failed(ctx) {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if watch != nil && err == nil {
			watch.ok()
		}
		if err != nil && pctx.Err() == nil && (watch == nil || status.Code(err) != codes.Unavailable) {
			return n, fmt.Errorf("alerts: pull %s: %w", sub, err)
		}
		msgs := resp.GetReceivedMessages()
		if len(msgs) == 0 {
			if !follow {
				return n, nil
			}
			continue
		}
		acks := make([]string, 0, len(msgs))
		var perr error
		for _, rm := range msgs {
			a, err := decodeAlert(rm.GetMessage())
			if err == nil {
				err = print(a)
			}
			if err != nil {
				perr = errors.Join(perr, err)
				continue // not acked: it comes back
			}
			acks = append(acks, rm.GetAckId())
			n++
		}
		if len(acks) > 0 {
			if err := c.SubscriptionAdminClient.Acknowledge(context.WithoutCancel(ctx), &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: acks}); err != nil {
				return n, fmt.Errorf("alerts: acknowledge: %w", err)
			}
		}
		if perr != nil {
			return n, perr
		}
	}
}

func decodeAlert(m *pubsubpb.PubsubMessage) (*inventoryv1.LowStockAlert, error) {
	a, err := broker.DecodeAlert(m)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return a, nil
}

type alertPrinter struct {
	w      io.Writer
	json   bool
	color  bool
	header bool
}

var severityColor = map[inventoryv1.LowStockAlert_Severity]string{
	inventoryv1.LowStockAlert_LOW:       "\x1b[33m", // yellow
	inventoryv1.LowStockAlert_OUT:       "\x1b[31m", // red
	inventoryv1.LowStockAlert_RECOVERED: "\x1b[32m", // green
}

func (p *alertPrinter) print(a *inventoryv1.LowStockAlert) error {
	if p.json {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(a)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	if !p.header {
		p.header = true
		fmt.Fprintf(p.w, "%-20s  %-9s  %-12s  %-12s  %7s  %9s  %-9s  %s\n", "ALERT TIME", "SEVERITY", "SKU", "LOCATION", "ON HAND", "THRESHOLD", "PREVIOUS", "EVENT")
	}
	sev := fmt.Sprintf("%-9s", a.GetSeverity())
	if c := severityColor[a.GetSeverity()]; p.color && c != "" {
		sev = c + sev + "\x1b[0m"
	}
	at := a.GetAlertTime()
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		at = t.UTC().Format("2006-01-02 15:04:05")
	}
	prev := a.GetPreviousSeverity().String()
	if a.GetPreviousSeverity() == inventoryv1.LowStockAlert_SEVERITY_UNSPECIFIED {
		prev = "-"
	} else if a.GetPreviousSeverity() == inventoryv1.LowStockAlert_RECOVERED {
		prev = "OK"
	}
	_, err := fmt.Fprintf(p.w, "%-20s  %s  %-12s  %-12s  %7d  %9d  %-9s  %s\n", at, sev, a.GetSku(), a.GetLocationId(),
		a.GetOnHand(), a.GetThreshold(), prev, a.GetEventId())
	return err
}
