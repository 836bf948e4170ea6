package pubsubio

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
)

// NewClient returns a Pub/Sub client of project.
func NewClient(ctx context.Context, project string) (*pubsub.Client, error) {
	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	return c, nil
}

// InAckChunks calls fn on successive parts of ids small enough for one
// Acknowledge or ModifyAckDeadline request (2,500 ids: well under the
// request size limit), stopping at the first error.
func InAckChunks(ids []string, fn func([]string) error) error {
	const chunk = 2500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}
