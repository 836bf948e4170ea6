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
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/broker"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubsrc"
)

func newAlertsCmd(g *Globals) *cobra.Command {
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
			client, err := pubsub.NewClient(ctx, g.Project)
			if err != nil {
				return fmt.Errorf("pubsub.NewClient: %w", err)
			}
			defer client.Close()
			p := &alertPrinter{w: cmd.OutOrStdout(), json: format == "json", color: isTerminal(cmd.OutOrStdout())}
			n, err := followAlerts(ctx, client, pubsubsrc.SubscriptionPath(g.Project, sub), follow, idle, p.print)
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

// followAlerts pulls alerts from sub, hands each to print and acks it once
// printed. It returns the number printed. Without follow it stops after a
// pull that waited idle for nothing.
func followAlerts(ctx context.Context, c *pubsub.Client, sub string, follow bool, idle time.Duration,
	print func(*inventoryv1.LowStockAlert) error) (int, error) {
	n := 0
	for {
		wait := idle
		if follow {
			wait = 30 * time.Second
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		resp, err := c.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 500})
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err != nil && pctx.Err() == nil {
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
	a := &inventoryv1.LowStockAlert{}
	var err error
	if m.GetAttributes()[event.AttrEncoding] == event.EncodingBinary {
		err = proto.Unmarshal(m.GetData(), a)
	} else {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(m.GetData(), a)
	}
	if err != nil {
		return nil, fmt.Errorf("alerts: message %s is not a LowStockAlert: %w", m.GetMessageId(), err)
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
