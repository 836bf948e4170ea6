package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// deadLetterMessage renders a rejected payload as the dead-letter topic's
// message (event.DeadLetterMessage, which cuts it to Pub/Sub's limits and
// keeps the size and SHA-256 of the payload).
func deadLetterMessage(stage string, payload []byte, attrs map[string]string, inv *event.Invalid, origin string, now time.Time) (*pubsub.Message, error) {
	data, mattrs, err := event.DeadLetterMessage(&inventoryv1.DeadLetter{
		Reason: inv.Code, Error: inv.Detail, Payload: payload, Attributes: attrs,
		Stage: stage, Origin: origin,
		DeadLetteredAt: now.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return nil, err
	}
	return &pubsub.Message{Data: data, Attributes: mattrs}, nil
}

// deadLetters publishes dead-letter envelopes and waits for them.
type deadLetters struct {
	pub   *pubsub.Publisher
	stage string
	mu    sync.Mutex
	res   []*pubsub.PublishResult
	errs  []error // envelopes that could not be built
}

func newDeadLetters(a *Admin, topic, stage string) *deadLetters {
	d := &deadLetters{stage: stage}
	if topic != "" {
		d.pub = a.Client.Publisher(topic)
	}
	return d
}

// add publishes the dead letter of payload. It returns a nil result when
// there is no dead-letter topic, and an error when the envelope cannot be
// built (wait reports that error too).
func (d *deadLetters) add(ctx context.Context, payload []byte, attrs map[string]string, inv *event.Invalid, origin string) (*pubsub.PublishResult, error) {
	if d.pub == nil {
		return nil, nil
	}
	m, err := deadLetterMessage(d.stage, payload, attrs, inv, origin, time.Now())
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.errs = append(d.errs, err)
		return nil, err
	}
	r := d.pub.Publish(ctx, m)
	d.res = append(d.res, r)
	return r, nil
}

// wait returns once every dead letter so far is published.
func (d *deadLetters) wait(ctx context.Context) error {
	d.mu.Lock()
	res, errs := d.res, d.errs
	d.res, d.errs = nil, nil
	d.mu.Unlock()
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

// refused reports whether a dead letter's publish failed for good: Pub/Sub
// (or the official publisher, before sending) refused the message itself,
// so publishing it again cannot succeed. The stream's sink
// (transforms/commit) tells failures apart the same way.
func refused(err error) bool {
	return errors.Is(err, pubsub.ErrOversizedMessage) || errors.Is(err, event.ErrDeadLetterTooLarge) ||
		status.Code(err) == codes.InvalidArgument
}

func (d *deadLetters) stop() {
	if d.pub != nil {
		d.pub.Stop()
	}
}
