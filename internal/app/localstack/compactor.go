package localstack

import (
	"context"
	"log/slog"
	"time"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

// DefaultCompactEvery is how often the local stack compacts its warehouse.
const DefaultCompactEvery = 30 * time.Second

// compactor compacts the local warehouse in the background: the streaming
// job writes a few small files per table per second, which every query
// (the tally, `inventory sql`, the nightly job, the stream's restore) would
// otherwise have to open. Each round compacts the partitions changed since
// the previous one began (all of them on the first); the size tiers of
// local.CompactPolicy keep a round's cost to the new files and a few
// merges of older ones. A failed round is logged and retried next time.
type compactor struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startCompactor(dir string, every time.Duration, logger *slog.Logger) (*compactor, error) {
	w, err := local.Open(dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &compactor{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var since time.Time
		console.Every(ctx, every, func() {
			// A partition's directory time moves when a file lands in it;
			// the margin covers a clock step and a slow round.
			start := time.Now()
			st, err := w.CompactAll(ctx, since, local.CompactPolicy{})
			switch {
			case ctx.Err() != nil:
			case err != nil:
				logger.Warn("warehouse compaction failed; retrying on the next round", "err", err)
			default:
				since = start.Add(-time.Minute)
				logger.Debug("warehouse compacted", "partitions", st.Partitions, "files_merged", st.Merged,
					"files_written", st.Written, "took", time.Since(start).Round(time.Millisecond))
			}
		})
	}()
	return c, nil
}

// stop stops the compactor and waits for its round: an interrupted merge
// leaves only a journal entry, which the next start removes or finishes.
func (c *compactor) stop() {
	c.cancel()
	<-c.done
}
