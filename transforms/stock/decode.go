package stock

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/csvsrc"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	register.DoFn4x1[context.Context, pubsubio.Batch, func(beam.EventTime, int, shardBatch), func(commit.Commit), error](&decodeFn{})
	register.Emitter3[beam.EventTime, int, shardBatch]()
	register.Emitter1[commit.Commit]()
}

// DefaultShards is how many shards the key space is hashed into.
//
// Each element of the stock stage is one shard's share of a batch, and its
// state round trips to the runner (read the generation, add a delta, write
// the generation: about 0.6 ms on Prism here, most of the stage's time;
// the ledger work is about a tenth of it) are paid per element, so fewer
// shards mean fewer round trips per event. Fewer shards also mean larger
// bases to rewrite. Measured 2026-12-06 (streambench, docs/benchmarks.md):
// 16 shards against 32 ran 14-16% faster at 1k, 100k and 1M keys, with
// 8% more peak RSS at 1M keys; 8 shards ran 25% faster with 22% more.
const DefaultShards = 16

// OriginPubSub and OriginCSV name where a dead letter came from.
const (
	OriginPubSub = "pubsub"
	OriginCSV    = "csv"
)

// Decoded is the output of DecodeEvents.
type Decoded struct {
	Events beam.PCollection // KV<int, shardBatch>
	// Rejected is the invalid messages: one Commit per batch that had any,
	// holding their dead letters and ack ids.
	Rejected beam.PCollection // Commit
}

// DecodeEvents is a composite transform that decodes and validates the
// messages of each batch by their googclient_schemaencoding attribute (JSON
// or BINARY). It expects a PCollection of Batch and returns the valid
// adjustments as KV<int, shardBatch> (the int is the hash shard of the key,
// shards in [0, shards)), timestamped with the batch's earliest event_time,
// and the invalid messages as dead letters with their reason code, in a
// Commit with their ack ids.
// It counts every message in the metric stream/received.
func DecodeEvents(s beam.Scope, batches beam.PCollection, shards int, origin string) Decoded {
	s = s.Scope("stock.DecodeEvents")
	if shards <= 0 {
		shards = DefaultShards
	}
	ev, dl := beam.ParDo2(s, &decodeFn{Shards: shards, Origin: origin}, batches)
	return Decoded{Events: ev, Rejected: dl}
}

type decodeFn struct {
	Shards int
	Origin string

	received beam.Counter
	dead     beam.Counter
	buf      [][]eventRecord
}

func (f *decodeFn) Setup() {
	f.received = beam.NewCounter(commit.MetricNamespace, commit.MetricReceived)
	f.dead = beam.NewCounter(commit.MetricNamespace, commit.MetricDeadLettered)
	f.buf = make([][]eventRecord, f.Shards)
}

func (f *decodeFn) ProcessElement(ctx context.Context, b pubsubio.Batch, emit func(beam.EventTime, int, shardBatch), reject func(commit.Commit)) error {
	now := clock.Now()
	var rejected commit.Commit
	for i := range b.Messages {
		m := &b.Messages[i]
		var rec eventRecord
		if err := decodeMessage(m, now, &rec.Adj); err != nil {
			rejected.DeadLetters = append(rejected.DeadLetters, deadLetter(m, err, f.Origin, now))
			if m.AckID != "" {
				rejected.Acks = append(rejected.Acks, m.AckID)
			}
			continue
		}
		rec.MessageID, rec.PublishTime, rec.Attributes, rec.AckID = m.ID, m.PublishTime, m.Attributes, m.AckID
		sh := rec.Adj.Key().Shard(f.Shards)
		f.buf[sh] = append(f.buf[sh], rec)
	}
	f.received.Inc(ctx, int64(len(b.Messages)))
	if n := len(rejected.DeadLetters); n > 0 {
		f.dead.Inc(ctx, int64(n))
		reject(rejected)
	}
	for sh, recs := range f.buf {
		if len(recs) == 0 {
			continue
		}
		ts := int64(math.MaxInt64)
		for i := range recs {
			ts = min(ts, recs[i].Adj.EventTime)
		}
		emit(mtime.FromTime(time.UnixMicro(ts)), sh, shardBatch{Records: recs})
		f.buf[sh] = nil // the emitted slice now belongs to the runner
	}
	return nil
}

// decodeMessage decodes and validates one message into a. Errors are
// *event.Invalid.
func decodeMessage(m *pubsubio.Message, now time.Time, a *event.Adjustment) error {
	if code := m.Attributes[csvsrc.AttrCSVError]; code != "" {
		return &event.Invalid{Code: code, Detail: m.Attributes[csvsrc.AttrCSVDetail]}
	}
	if err := event.Decode(m.Data, m.Attributes[event.AttrEncoding], a); err != nil {
		return err
	}
	return event.Validate(a, now)
}

// deadLetter builds the dead-letter row of message m refused with err.
func deadLetter(m *pubsubio.Message, err error, origin string, now time.Time) warehouse.DeadLetterRow {
	code := event.CodeInternal
	var inv *event.Invalid
	if errors.As(err, &inv) {
		code = inv.Code
	}
	row := warehouse.DeadLetterRow{
		Reason:         code,
		Error:          err.Error(),
		Payload:        m.Data,
		Attributes:     attributesJSON(m.Attributes),
		MessageID:      m.ID,
		Stage:          warehouse.StageStream,
		Origin:         origin,
		DeadLetteredAt: now.UTC(),
	}
	if m.PublishTime != 0 {
		t := time.UnixMicro(m.PublishTime).UTC()
		row.PublishTime = &t
	}
	return row
}

// attributesJSON renders message attributes as a JSON object with sorted
// keys ("{}" if none), as json.Marshal does, without its reflection for the
// common case of a few plain ASCII attributes.
func attributesJSON(attrs map[string]string) string {
	if len(attrs) == 0 {
		return "{}"
	}
	if len(attrs) <= 8 {
		var keys [8]string
		n := 0
		plain := true
		size := 2
		for k, v := range attrs {
			keys[n] = k
			n++
			plain = plain && plainJSON(k) && plainJSON(v)
			size += len(k) + len(v) + 6
		}
		if plain {
			ks := keys[:n]
			slices.Sort(ks)
			b := make([]byte, 0, size)
			b = append(b, '{')
			for i, k := range ks {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '"')
				b = append(b, k...)
				b = append(b, '"', ':', '"')
				b = append(b, attrs[k]...)
				b = append(b, '"')
			}
			b = append(b, '}')
			return string(b)
		}
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// plainJSON reports whether s needs no escaping in a JSON string (and no
// HTML escaping, which json.Marshal also does).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
