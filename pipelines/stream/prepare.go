package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
)

// Prepare completes and checks a Config that cmd/stream filled from flags,
// before anything is built. explicit names the flags set on the command
// line. A Config without a project takes PUBSUB_PROJECT_ID's; the files it
// names must exist; off Dataflow an alert encoding left empty is the alert
// topic's. Without a project a CSV replay publishes nothing (unless a topic
// is asked for explicitly, which is an error) and note says so, once.
func (c *Config) Prepare(ctx context.Context, explicit map[string]bool) (note string, err error) {
	if c.Project == "" {
		c.Project = os.Getenv("PUBSUB_PROJECT_ID")
	}
	if err := c.checkFiles(); err != nil {
		return "", err
	}
	if note, err = c.withoutProject(explicit); err != nil {
		return "", err
	}
	if c.AlertEncoding == "" {
		c.AlertEncoding = event.EncodingJSON
		if c.AlertTopic != "" && !c.dataflow() {
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			enc, err := commit.LookupTopicEncoding(lctx, c.Project, c.AlertTopic)
			cancel()
			if err != nil {
				return "", fmt.Errorf("alert topic %s of project %q: encoding: %w (set --alert_encoding)", c.AlertTopic, c.Project, err)
			}
			c.AlertEncoding = enc
		}
	}
	return note, c.Validate()
}

// checkFiles checks that the local files c names exist.
func (c *Config) checkFiles() error {
	for _, f := range []struct{ flag, path string }{{"input", c.Input}, {"thresholds", c.Thresholds}, {"snapshot", c.Snapshot}} {
		if f.path == "" || strings.Contains(f.path, "://") {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("--%s %q: %w", f.flag, f.path, err)
		}
		if fi.IsDir() {
			return fmt.Errorf("--%s %q is a directory, want a file", f.flag, f.path)
		}
	}
	return nil
}

// withoutProject turns publishing off for a CSV replay without a project.
func (c *Config) withoutProject(explicit map[string]bool) (note string, err error) {
	if c.Project != "" || c.Subscription != "" || c.Input == "" {
		return "", nil
	}
	for _, t := range []struct{ flag, topic string }{{"alert_topic", c.AlertTopic}, {"dead_letter_topic", c.DeadLetterTopic}} {
		if explicit[t.flag] && t.topic != "" {
			return "", fmt.Errorf("--%s %q needs --project (or PUBSUB_PROJECT_ID) to publish to", t.flag, t.topic)
		}
	}
	c.AlertTopic, c.DeadLetterTopic = "", ""
	if c.AlertEncoding == "" {
		c.AlertEncoding = event.EncodingJSON
	}
	return fmt.Sprintf("no --project: alerts and dead letters go to the warehouse only (%s, tables %s and %s)",
		c.Warehouse, warehouse.LowStockAlerts, warehouse.DeadLetters), nil
}

// ReplayRows returns, for a CSV replay into a local warehouse, the data
// rows of the file and a function that counts the rows the warehouse
// stored (each row becomes an adjustment or a dead letter; -1 when it
// cannot tell), for a progress line. ok is false for any other job.
func ReplayRows(ctx context.Context, cfg Config) (total int64, stored func() int64, ok bool) {
	if cfg.Input == "" || strings.HasPrefix(cfg.Warehouse, "bq://") {
		return 0, nil, false
	}
	stored = func() int64 {
		rows, err := warehouse.QueryRows(ctx, cfg.Warehouse, progressSQL)
		if err != nil || len(rows) == 0 {
			return -1
		}
		switch n := rows[0]["n"].(type) {
		case int64:
			return n
		case float64:
			return int64(n)
		}
		return -1
	}
	return csvRows(cfg.Input), stored, true
}

// progressSQL counts the rows a CSV replay has stored.
const progressSQL = "SELECT (SELECT count(*) FROM adjustments) + (SELECT count(*) FROM dead_letters) AS n"

// csvRows counts the data rows of a local CSV (its lines but the header),
// or returns -1.
func csvRows(path string) int64 {
	if path == "" || strings.Contains(path, "://") {
		return -1
	}
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			n++
		}
	}
	if sc.Err() != nil {
		return -1
	}
	return max(n-1, 0)
}
