package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// AttrDeadLetterReason is set on every dead-letter message, so that a
// subscription filter or a person can pick them by reason.
const AttrDeadLetterReason = "dead_letter_reason"

// DeadLetterMessage renders a rejected payload as the JSON DeadLetter
// envelope published to the dead-letter topic.
func DeadLetterMessage(stage string, payload []byte, attrs map[string]string, messageID string, inv *event.Invalid, origin string, now time.Time) *pubsub.Message {
	dl := &inventoryv1.DeadLetter{
		Reason: inv.Code, Error: inv.Detail, Payload: payload, Attributes: attrs,
		MessageId: messageID, Stage: stage, Origin: origin,
		DeadLetteredAt: now.UTC().Format(time.RFC3339Nano),
	}
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(dl)
	return &pubsub.Message{Data: b, Attributes: map[string]string{AttrDeadLetterReason: inv.Code, "stage": stage}}
}

// deadLetters publishes dead-letter envelopes and waits for them.
type deadLetters struct {
	pub   *pubsub.Publisher
	stage string
	mu    sync.Mutex
	res   []*pubsub.PublishResult
}

func newDeadLetters(a *Admin, topic, stage string) *deadLetters {
	d := &deadLetters{stage: stage}
	if topic != "" {
		d.pub = a.Client.Publisher(topic)
	}
	return d
}

func (d *deadLetters) add(ctx context.Context, payload []byte, attrs map[string]string, inv *event.Invalid, origin string) *pubsub.PublishResult {
	if d.pub == nil {
		return nil
	}
	r := d.pub.Publish(ctx, DeadLetterMessage(d.stage, payload, attrs, "", inv, origin, time.Now()))
	d.mu.Lock()
	d.res = append(d.res, r)
	d.mu.Unlock()
	return r
}

// wait returns once every dead letter so far is published.
func (d *deadLetters) wait(ctx context.Context) error {
	d.mu.Lock()
	res := d.res
	d.res = nil
	d.mu.Unlock()
	var errs []error
	for _, r := range res {
		if _, err := r.Get(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("broker: %d dead letters not published: %w", len(errs), errors.Join(errs...))
	}
	return nil
}

func (d *deadLetters) stop() {
	if d.pub != nil {
		d.pub.Stop()
	}
}
