package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
)

// PublishConfig says how to publish a CSV of adjustments.
type PublishConfig struct {
	// Topic and DeadLetterTopic are topic ids.
	Topic           string
	DeadLetterTopic string
	// Format is "json" (the seed's JSON publisher) or "proto" (the
	// Protobuf publisher, which encodes in the encoding bound to the topic).
	Format string
	// Name labels the input in messages ("-" for standard input).
	Name string
	// Progress, when set, is told of each byte of input read.
	Progress func(n int)
	// Errors receives one line per rejected row; nil discards them.
	Errors io.Writer
	// OnReject, when set, is called (one call at a time) with each
	// rejected row: its line, payload and reason, as its dead letter has
	// them. The CLI stores them in the warehouse's dead_letters.
	OnReject func(line int, payload []byte, inv *event.Invalid)
	// Now is the clock for validation (time.Now).
	Now func() time.Time
	// Skip is how many data rows at the start of the input to pass over
	// unread (to resume an interrupted publish).
	Skip int
	// InOrder publishes one row at a time, each confirmed by the topic
	// before the next is sent, so that the topic holds the rows in input
	// order; otherwise the client sends batches concurrently, and they may
	// be stored in any order. It costs a round trip a row. The demo
	// publishes so: the stream then applies each key's events in input
	// order, and every run raises the same alerts.
	InOrder bool
}

// PublishStats counts what a publish did. Rows = Published + Rejected.
type PublishStats struct {
	Rows      int
	Published int
	// Rejected rows were not published: bad CSV or contract violations
	// found here, or refused by the topic's schema. Each has an error line
	// and a dead-letter message.
	Rejected int
	// Failed publishes could not be delivered after the client's retries.
	Failed int
	// Skipped rows were passed over (PublishConfig.Skip); not in Rows.
	Skipped int
	// Unconfirmed rows were handed to the client, but an interrupt came
	// before it confirmed them: dropped by the client, or still in flight
	// (then they may be stored). Not in Failed.
	Unconfirmed int
	// ResumeSkip is the number of data rows at the start of the input
	// that are settled (published or rejected): Skip it to go on where an
	// interrupted publish left off. ResumeLine is the line of the first
	// row that is not.
	ResumeSkip, ResumeLine int
}

// Publisher publishes CSV files of adjustments to a topic, one message a
// valid row; it dead-letters the rows it refuses. Make one with
// NewPublisher.
type Publisher struct {
	admin *Admin
	cfg   PublishConfig
}

// NewPublisher returns a Publisher of cfg over a's client; cfg's unset
// fields take their defaults (Now: clock.Now, Name: "-", Errors: discarded).
func NewPublisher(a *Admin, cfg PublishConfig) *Publisher {
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	if cfg.Name == "" {
		cfg.Name = "-"
	}
	if cfg.Errors == nil {
		cfg.Errors = io.Discard
	}
	return &Publisher{admin: a, cfg: cfg}
}

// Publish reads adjustments from r as CSV and publishes each valid row to
// the topic. The client library batches and retries. A bad row is reported
// with its line number and dead-lettered, and does not stop the rest.
func (p *Publisher) Publish(ctx context.Context, r io.Reader) (PublishStats, error) {
	encoding, err := p.encoding(ctx)
	if err != nil {
		return PublishStats{}, err
	}
	if p.cfg.Progress != nil {
		r = &countingReader{r: r, f: p.cfg.Progress}
	}
	rows, err := event.NewCSVReader(r, p.cfg.Name)
	if err != nil {
		return PublishStats{}, fmt.Errorf("broker: publish: %w", err)
	}
	run := p.start(ctx, encoding)
	defer run.pub.Stop()
	defer run.dl.stop()
	readErr := run.readAll(ctx, rows)
	close(run.results)
	<-run.done
	if run.unsettled == 0 {
		run.st.ResumeSkip, run.st.ResumeLine = run.st.Skipped+run.st.Rows, rows.Line()+1
	}
	// Dead letters are sent under the client's own context: an interrupt
	// still waits for them, to count them.
	if err := run.dl.wait(context.WithoutCancel(ctx)); err != nil {
		readErr = errors.Join(readErr, err)
	}
	return run.st, readErr
}

// encoding returns the encoding to publish in: the one bound to the topic,
// checked against the configured format, or the format's own when no
// schema is bound.
func (p *Publisher) encoding(ctx context.Context) (string, error) {
	encoding, err := p.admin.topicEncoding(ctx, p.cfg.Topic)
	if err != nil {
		return "", err
	}
	switch strings.ToLower(p.cfg.Format) {
	case "json", "":
		if encoding == event.EncodingBinary {
			return "", fmt.Errorf("broker: publish: topic %s takes BINARY protobuf; use --format=proto", p.cfg.Topic)
		}
		return event.EncodingJSON, nil
	case "proto", "protobuf":
		if encoding == "" {
			return event.EncodingBinary, nil // no schema bound: any bytes go
		}
		return encoding, nil
	default:
		return "", fmt.Errorf("broker: publish: format %q is neither json nor proto", p.cfg.Format)
	}
}

// publishRun is the state of one Publish: the topic's publisher, the dead
// letters, and the results that collect waits for.
type publishRun struct {
	cfg      PublishConfig
	encoding string
	pub      *pubsub.Publisher
	dl       *deadLetters
	results  chan pendingPublish
	done     chan struct{} // closed when collect has seen every result
	mu       sync.Mutex    // guards st's Published, Rejected and Failed, and cfg.Errors
	st       PublishStats
	// unsettled is the data row number (from 1, counting skipped rows) of
	// the first row handed to the client and not published; 0: none.
	unsettled int
}

// pendingPublish is a row handed to the client, awaiting its result.
type pendingPublish struct {
	row  int // data row number, from 1, counting skipped rows
	line int
	raw  []byte
	res  *pubsub.PublishResult
}

// interruptGrace bounds how long an interrupted publish waits for the
// results of the rows in flight.
const interruptGrace = 10 * time.Second

// start opens the topic's publisher and the dead letters, and starts
// collecting results.
func (p *Publisher) start(ctx context.Context, encoding string) *publishRun {
	pub := p.admin.Client.Publisher(p.cfg.Topic)
	pub.PublishSettings.FlowControlSettings = pubsub.FlowControlSettings{
		MaxOutstandingMessages: 10_000, MaxOutstandingBytes: 64 << 20,
		LimitExceededBehavior: pubsub.FlowControlBlock,
	}
	if p.cfg.InOrder {
		pub.PublishSettings.CountThreshold = 1 // each row sent at once, not after DelayThreshold
	}
	run := &publishRun{
		cfg: p.cfg, encoding: encoding, pub: pub,
		dl:      newDeadLetters(p.admin, p.cfg.DeadLetterTopic, event.StagePublish),
		results: make(chan pendingPublish, 4096),
		done:    make(chan struct{}),
	}
	go run.collect(ctx)
	return run
}

// readAll publishes every row of rows, rejecting the bad ones, until the
// input ends. It returns why it stopped early: a read or encoding error,
// or ctx ending.
func (run *publishRun) readAll(ctx context.Context, rows *event.CSVReader) error {
	for {
		var adj event.Adjustment
		err := rows.Next(&adj)
		if errors.Is(err, io.EOF) {
			return nil
		}
		var re *event.RowError
		if run.st.Skipped < run.cfg.Skip && (err == nil || errors.As(err, &re)) {
			run.st.Skipped++
			continue
		}
		if errors.As(err, &re) {
			run.st.Rows++
			run.reject(ctx, re.Line, []byte(re.Raw), re.Err)
			continue
		}
		if err != nil {
			return fmt.Errorf("broker: publish: read %s: %w", run.cfg.Name, err)
		}
		run.st.Rows++
		if err := run.publish(ctx, &adj, rows.Line()); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// publish validates and encodes one row and hands it to the client; an
// invalid row is rejected. Only an encoding failure is returned.
func (run *publishRun) publish(ctx context.Context, adj *event.Adjustment, line int) error {
	if err := event.Validate(adj, run.cfg.Now()); err != nil {
		var inv *event.Invalid
		errors.As(err, &inv)
		raw, _ := event.MarshalJSON(adj)
		run.reject(ctx, line, raw, inv)
		return nil
	}
	var data []byte
	var err error
	if run.encoding == event.EncodingBinary {
		data, err = event.MarshalBinary(adj)
	} else {
		data, err = event.MarshalJSON(adj)
	}
	if err != nil {
		return fmt.Errorf("broker: publish: encode line %d: %w", line, err)
	}
	res := run.pub.Publish(ctx, &pubsub.Message{
		Data: data,
		Attributes: map[string]string{
			event.AttrEventTime: event.FormatTime(adj.EventTime),
			event.AttrEventID:   adj.EventID,
			"source":            adj.Source,
		},
	})
	run.results <- pendingPublish{row: run.st.Skipped + run.st.Rows, line: line, raw: data, res: res}
	if run.cfg.InOrder {
		select { // its outcome is collect's to count
		case <-res.Ready():
		case <-ctx.Done():
		}
	}
	return nil
}

// collect waits for each published row's result and counts it: published,
// rejected by the topic's schema (and dead-lettered), or failed.
//
// A row the client accepted is sent under the client's own context, so when
// ctx ends (an interrupt) collect waits up to interruptGrace more for the
// results in flight, and counts what is still unknown as Unconfirmed, with
// no error line each.
func (run *publishRun) collect(ctx context.Context) {
	defer close(run.done)
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(interruptGrace, cancel) })()
	for p := range run.results {
		_, err := p.res.Get(wctx)
		if err != nil && !isSchemaReject(err) && run.unsettled == 0 {
			run.unsettled = p.row
			run.st.ResumeSkip, run.st.ResumeLine = p.row-1, p.line
		}
		if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			run.mu.Lock()
			run.st.Unconfirmed++
			run.mu.Unlock()
			continue
		}
		if err == nil {
			run.mu.Lock()
			run.st.Published++
			run.mu.Unlock()
			continue
		}
		if isSchemaReject(err) {
			run.reject(ctx, p.line, p.raw, &event.Invalid{Code: event.CodeSchemaMismatch, Detail: "refused by the topic's schema: " + err.Error()})
			continue
		}
		run.mu.Lock()
		run.st.Failed++
		fmt.Fprintf(run.cfg.Errors, "%s:%d: publish failed: %v\n", run.cfg.Name, p.line, err)
		run.mu.Unlock()
	}
}

// reject counts, reports and dead-letters a refused row. The dead letter's
// failure, if any, is reported by dl.wait.
func (run *publishRun) reject(ctx context.Context, line int, payload []byte, inv *event.Invalid) {
	run.mu.Lock()
	run.st.Rejected++
	fmt.Fprintf(run.cfg.Errors, "%s:%d: rejected: %v\n", run.cfg.Name, line, inv)
	if run.cfg.OnReject != nil {
		run.cfg.OnReject(line, payload, inv)
	}
	run.mu.Unlock()
	run.dl.add(ctx, payload, nil, inv, fmt.Sprintf("%s:%d", run.cfg.Name, line))
}

// topicEncoding returns "JSON" or "BINARY" as bound to the topic in the
// registry, or "" when no schema is bound.
func (a *Admin) topicEncoding(ctx context.Context, topic string) (string, error) {
	t, err := a.Client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: a.topic(topic)})
	if err != nil {
		return "", fmt.Errorf("broker: get topic %s (run `inventory setup` first?): %w", topic, err)
	}
	if t.GetSchemaSettings().GetSchema() == "" {
		return "", nil
	}
	switch t.GetSchemaSettings().GetEncoding() {
	case pubsubpb.Encoding_BINARY:
		return event.EncodingBinary, nil
	default:
		return event.EncodingJSON, nil
	}
}

func isSchemaReject(err error) bool {
	s := err.Error()
	return strings.Contains(s, "InvalidArgument") || strings.Contains(s, "code = InvalidArgument")
}

type countingReader struct {
	r io.Reader
	f func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.f(n)
	}
	return n, err
}
