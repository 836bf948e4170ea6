// Package rulechange makes a live reorder threshold change and publishes
// it to the threshold-updates topic: the one code path of `inventory
// thresholds set` and of the operations page's form, so that both validate
// and publish a change the same way.
package rulechange

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
	"github.com/inventory-events/inventory/transforms/stock"
)

// New validates a change as an operator typed it: threshold n (a whole
// number from 0 to ledger.MaxThreshold) for sku at loc (ledger.Wildcard:
// every location of the SKU), made by by (empty: Who()) at now. The change
// gets a fresh id, which a redelivery keeps.
func New(sku, loc, n, by string, now time.Time) (ledger.Change, error) {
	th, err := ledger.ParseThreshold(n)
	if err != nil {
		return ledger.Change{}, fmt.Errorf("thresholds set: %w", err)
	}
	if by == "" {
		by = Who()
	}
	id := make([]byte, 8)
	rand.Read(id)
	c := ledger.Change{ID: now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(id), SKU: sku, LocationID: loc,
		Threshold: th, At: now.UnixMicro(), By: by}
	if err := c.Validate(); err != nil {
		return ledger.Change{}, fmt.Errorf("thresholds set: %w", err)
	}
	return c, nil
}

// Who is the default author of a change: $USER@host.
func Who() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return cmp.Or(name, "unknown") + "@" + cmp.Or(host, "unknown")
}

// Publish publishes c to topic of project in the topic's schema encoding,
// with its id in the change_id attribute, and waits until Pub/Sub has it.
func Publish(ctx context.Context, project, topic string, c *ledger.Change) error {
	enc, err := commit.LookupTopicEncoding(ctx, project, topic)
	if err != nil {
		return fmt.Errorf("thresholds set: %w (run inventory setup)", err)
	}
	msg := stock.ThresholdUpdateProto(c)
	var data []byte
	if enc == event.EncodingBinary {
		data, err = proto.Marshal(msg)
	} else {
		data, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	}
	if err != nil {
		return fmt.Errorf("thresholds set: encode: %w", err)
	}
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return fmt.Errorf("pubsub.NewClient: %w", err)
	}
	defer client.Close()
	pub := client.Publisher(pubsubio.TopicPath(project, topic))
	defer pub.Stop()
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: map[string]string{"change_id": c.ID}}).Get(ctx); err != nil {
		return fmt.Errorf("thresholds set: publish to %s: %w", topic, err)
	}
	return nil
}

// Unseen returns a warning when the warehouse wh holds no stock_levels or
// adjustments row of c's key (of its SKU, for LOCATION "*"): a typo, most
// likely, though a rule for a SKU still to come is legitimate. It returns
// "" when the key was seen, or when the warehouse cannot be read (no
// reason to warn).
func Unseen(ctx context.Context, wh string, c *ledger.Change) string {
	if !strings.HasPrefix(wh, "bq://") {
		if _, err := os.Stat(wh); err != nil {
			return "" // no local warehouse: nothing to compare with
		}
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	cond := "sku = " + q(c.SKU)
	key := "SKU " + c.SKU
	if c.LocationID != ledger.Wildcard {
		cond += " AND location_id = " + q(c.LocationID)
		key += " at " + c.LocationID
	}
	rows, err := warehouse.QueryRows(ctx, wh, fmt.Sprintf(
		"SELECT (SELECT count(*) FROM (SELECT 1 FROM stock_levels WHERE %[1]s LIMIT 1)) + (SELECT count(*) FROM (SELECT 1 FROM adjustments WHERE %[1]s LIMIT 1)) AS n", cond))
	if err != nil || len(rows) != 1 {
		return ""
	}
	if n, ok := rows[0]["n"].(int64); ok && n == 0 {
		return fmt.Sprintf("%s was never seen in %s (no stock_levels or adjustments row); publishing the rule anyway", key, wh)
	}
	return ""
}
