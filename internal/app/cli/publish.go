package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

func newPublishCmd(g *globals) *cobra.Command {
	cfg := broker.PublishConfig{}
	names := broker.DefaultNames()
	var whURI string
	cmd := &cobra.Command{
		Use:   "publish [--format=json|proto] FILE|-",
		Short: "Publish adjustments from a CSV file or standard input",
		Long: `publish reads adjustments as CSV (header event_id,event_time,sku,location_id,
reason,quantity,source; extra columns ignored) and publishes each row to
inventory-topic: as JSON (--format=json), or as Protobuf in the encoding bound
to the topic (--format=proto). A bad row gets a line-numbered error, is sent to
the dead-letter topic and to the dead_letters table of --warehouse (stage
"publish"), and is not published; the command then exits non-zero saying how
many rows were rejected. A bad header, or a Pub/Sub that does not answer, fails
at once. On success it prints one summary line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPublish(cmd, g, cfg, names, whURI, args[0])
		},
	}
	cmd.Flags().StringVar(&cfg.Format, "format", "json", "json, or proto (encoded as the topic's schema binding says)")
	cmd.Flags().StringVar(&names.Topic, "topic", names.Topic, "topic id")
	cmd.Flags().IntVar(&cfg.Skip, "skip", 0, "pass over the first `N` data rows (to resume an interrupted publish)")
	cmd.Flags().StringVar(&whURI, "warehouse", warehouse.DefaultURI, "warehouse whose dead_letters also gets the rejected rows (default: ./warehouse when it exists; empty: none)")
	return cmd
}

// runPublish is publish's run: it checks file's header and the local
// Pub/Sub, publishes file's rows with a progress bar, stores the rejected
// rows in the warehouse wh, and says how it went.
func runPublish(cmd *cobra.Command, g *globals, cfg broker.PublishConfig, names broker.Names, whURI, file string) error {
	ctx := cmd.Context()
	if cfg.Skip < 0 {
		return fmt.Errorf("publish: --skip %d is negative", cfg.Skip)
	}
	cfg.Name = file
	in, size, closeIn, err := openPublishInput(cmd.InOrStdin(), file)
	if err != nil {
		return err
	}
	defer closeIn()
	// What can be checked here is, before the broker is touched.
	in, err = checkHeader(in, cfg.Name)
	if err != nil {
		return err
	}
	wh, err := publishWarehouse(whURI, cmd.Flags().Changed("warehouse"))
	if err != nil {
		return err
	}
	errw := cmd.ErrOrStderr()
	line := console.NewLine(errw)
	cfg.Errors = line.Writer(errw)
	dead := &deadLetterSink{name: cfg.Name}
	cfg.OnReject = dead.add
	admin, err := broker.NewAdmin(ctx, g.Project)
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := probePubSub(ctx, admin); err != nil {
		return err
	}
	var read atomic.Int64
	cfg.Progress = func(n int) { read.Add(int64(n)) }
	t0 := time.Now()
	stop := line.Tick(200*time.Millisecond, func() string {
		return console.Bar("publish "+cfg.Name, read.Load(), size, "bytes", time.Since(t0), line.Width())
	})
	cfg.Topic, cfg.DeadLetterTopic = names.Topic, names.DeadLetterTopic
	st, err := broker.NewPublisher(admin, cfg).Publish(ctx, in)
	stop()
	serr := dead.store(context.WithoutCancel(ctx), wh)
	if serr != nil {
		serr = fmt.Errorf("publish: %w", serr)
		err = errors.Join(err, serr)
	}
	if ctx.Err() != nil {
		// One line, instead of one "context canceled" per row.
		return errors.Join(interrupted(st, file, publishCount), serr)
	}
	if err != nil {
		return err
	}
	return publishSummary(errw, cfg, names, wh, st, time.Since(t0))
}

// openPublishInput opens publish's input: file, or in for "-". It returns
// the input's size (-1: unknown) and its close.
func openPublishInput(in io.Reader, file string) (io.Reader, int64, func(), error) {
	if file == "-" {
		return in, -1, func() {}, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("publish: %w", err)
	}
	var size int64 = -1
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// publishSummary is publish's outcome once every row was read: an error
// saying how many rows were rejected and where they went, or one summary
// line on errw.
func publishSummary(errw io.Writer, cfg broker.PublishConfig, names broker.Names, wh string, st broker.PublishStats, took time.Duration) error {
	n := publishCount
	if st.Rejected > 0 || st.Failed > 0 {
		where := names.DeadLetterTopic
		if wh != "" {
			where += ", " + wh + " dead_letters"
		} else {
			where += "; no warehouse, see --warehouse"
		}
		failed := ""
		if st.Failed > 0 {
			failed = ", " + n(st.Failed) + " failed"
		}
		return fmt.Errorf("publish: %s of %s rows rejected (to %s)%s; %s published", n(st.Rejected), n(st.Rows), where, failed, n(st.Published))
	}
	skipped := ""
	if st.Skipped > 0 {
		skipped = " (after skipping " + n(st.Skipped) + ")"
	}
	fmt.Fprintf(errw, "published %s rows of %s%s to %s as %s in %s\n", n(st.Published), cfg.Name, skipped, names.Topic, cfg.Format, took.Round(time.Millisecond))
	return nil
}

// publishCount is a count of rows in publish's lines: 1,234,567.
func publishCount(i int) string { return console.Thousands(int64(i)) }

// interrupted is publish's one line on an interrupt: what was published,
// and where to resume.
func interrupted(st broker.PublishStats, file string, n func(int) string) error {
	msg := n(st.Published) + " published"
	if st.Rejected > 0 {
		msg += ", " + n(st.Rejected) + " rejected"
	}
	if st.Failed > 0 {
		msg += ", " + n(st.Failed) + " failed"
	}
	if st.Unconfirmed > 0 {
		msg += ", " + n(st.Unconfirmed) + " in flight (may be stored; republishing them is safe: events are deduplicated by event_id)"
	}
	return fmt.Errorf("publish interrupted: %s; resume from line %d with: inventory publish --skip=%d %s",
		msg, st.ResumeLine, st.ResumeSkip, file)
}
