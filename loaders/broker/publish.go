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
}

// Publish reads adjustments from r as CSV and publishes each valid row to
// the topic. The client library batches and retries. A bad row is reported
// with its line number and dead-lettered, and does not stop the rest.
func (a *Admin) Publish(ctx context.Context, r io.Reader, cfg PublishConfig) (PublishStats, error) {
	var st PublishStats
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" {
		cfg.Name = "-"
	}
	if cfg.Errors == nil {
		cfg.Errors = io.Discard
	}
	encoding, err := a.topicEncoding(ctx, cfg.Topic)
	if err != nil {
		return st, err
	}
	switch strings.ToLower(cfg.Format) {
	case "json", "":
		if encoding == event.EncodingBinary {
			return st, fmt.Errorf("broker: publish: topic %s takes BINARY protobuf; use --format=proto", cfg.Topic)
		}
		encoding = event.EncodingJSON
	case "proto", "protobuf":
		if encoding == "" {
			encoding = event.EncodingBinary // no schema bound: any bytes go
		}
	default:
		return st, fmt.Errorf("broker: publish: format %q is neither json nor proto", cfg.Format)
	}
	if cfg.Progress != nil {
		r = &countingReader{r: r, f: cfg.Progress}
	}
	rows, err := event.NewCSVReader(r, cfg.Name)
	if err != nil {
		return st, fmt.Errorf("broker: publish: %w", err)
	}
	pub := a.Client.Publisher(cfg.Topic)
	pub.PublishSettings.FlowControlSettings = pubsub.FlowControlSettings{
		MaxOutstandingMessages: 10_000, MaxOutstandingBytes: 64 << 20,
		LimitExceededBehavior: pubsub.FlowControlBlock,
	}
	defer pub.Stop()
	dl := newDeadLetters(a, cfg.DeadLetterTopic, event.StagePublish)
	defer dl.stop()

	type pending struct {
		line int
		raw  []byte
		res  *pubsub.PublishResult
	}
	results := make(chan pending, 4096)
	var mu sync.Mutex
	reject := func(line int, payload []byte, inv *event.Invalid) {
		mu.Lock()
		st.Rejected++
		fmt.Fprintf(cfg.Errors, "%s:%d: rejected: %v\n", cfg.Name, line, inv)
		if cfg.OnReject != nil {
			cfg.OnReject(line, payload, inv)
		}
		mu.Unlock()
		dl.add(ctx, payload, nil, inv, fmt.Sprintf("%s:%d", cfg.Name, line)) // wait reports failures
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range results {
			_, err := p.res.Get(ctx)
			if err == nil {
				mu.Lock()
				st.Published++
				mu.Unlock()
				continue
			}
			if isSchemaReject(err) {
				reject(p.line, p.raw, &event.Invalid{Code: event.CodeSchemaMismatch, Detail: "refused by the topic's schema: " + err.Error()})
				continue
			}
			mu.Lock()
			st.Failed++
			fmt.Fprintf(cfg.Errors, "%s:%d: publish failed: %v\n", cfg.Name, p.line, err)
			mu.Unlock()
		}
	}()

	var readErr error
	for {
		var adj event.Adjustment
		err := rows.Next(&adj)
		if errors.Is(err, io.EOF) {
			break
		}
		var re *event.RowError
		if errors.As(err, &re) {
			st.Rows++
			reject(re.Line, []byte(re.Raw), re.Err)
			continue
		}
		if err != nil {
			readErr = fmt.Errorf("broker: publish: read %s: %w", cfg.Name, err)
			break
		}
		st.Rows++
		if err := event.Validate(&adj, cfg.Now()); err != nil {
			var inv *event.Invalid
			errors.As(err, &inv)
			raw, _ := event.MarshalJSON(&adj)
			reject(rows.Line(), raw, inv)
			continue
		}
		var data []byte
		if encoding == event.EncodingBinary {
			data, err = event.MarshalBinary(&adj)
		} else {
			data, err = event.MarshalJSON(&adj)
		}
		if err != nil {
			readErr = fmt.Errorf("broker: publish: encode line %d: %w", rows.Line(), err)
			break
		}
		res := pub.Publish(ctx, &pubsub.Message{
			Data: data,
			Attributes: map[string]string{
				event.AttrEventTime: event.FormatTime(adj.EventTime),
				event.AttrEventID:   adj.EventID,
				"source":            adj.Source,
			},
		})
		results <- pending{line: rows.Line(), raw: data, res: res}
		if ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
	}
	close(results)
	<-done
	if err := dl.wait(ctx); err != nil {
		readErr = errors.Join(readErr, err)
	}
	return st, readErr
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
