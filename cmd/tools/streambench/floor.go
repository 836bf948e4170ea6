package main

// The floor (--floor) is a measurement harness, not part of the job: a
// pipeline of the stream job's shape on Prism with none of its per-event
// work, to tell how fast any pipeline of that shape can run here. It has
// the job's stages and fusion breaks (stream.Build's Prism path):
//
//  1. the Pub/Sub source (pubsubio.Read, the job's options) fused with a
//     ParDo that splits each Batch into one KV<int, floorShard> per hash
//     shard, as stock.DecodeEvents does, but carrying only the ack ids
//     (and, for the harness's markers, the one event decoded);
//  2. a stateful DoFn keyed by shard that reads and writes one
//     state.Value[int64] per element, as the stock stage reads and writes
//     its shard's state, fused with commit.Write (the job's sink options:
//     alerts published, a warehouse transaction, then the acks);
//  3. commit.Write's EndStage GroupByKey.
//
// Every marker yields a LOW alert, so the harness's markers come back as
// they do from the job; so does one latency-phase event in every
// --floor_alert_every, so that the latency phase has alerts to time.

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/pipelines/stream"
	"github.com/inventory-events/inventory/transforms/commit"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	beam.RegisterType(reflect.TypeOf(floorShard{}))
	beam.RegisterCoder(reflect.TypeOf(floorShard{}), encodeFloorShard, decodeFloorShard)
	register.DoFn2x1[pubsubio.Batch, func(int, floorShard), error](&floorSplitFn{})
	register.Emitter2[int, floorShard]()
	register.DoFn4x1[state.Provider, int, floorShard, func(commit.Commit), error](&floorStateFn{})
}

// floorShard is the part of one Batch whose messages hash to one shard: their
// ack ids, and the events that must raise an alert.
type floorShard struct {
	Acks   []string
	Alerts []floorAlert
}

// floorAlert is what an alert row needs of its event.
type floorAlert struct {
	EventID, SKU, LocationID string
	EventTime                int64 // Unix µs
}

func encodeFloorShard(v floorShard) []byte {
	b := make([]byte, 0, 48*len(v.Acks)+8)
	b = codec.AppendUvarint(b, uint64(len(v.Acks)))
	for _, a := range v.Acks {
		b = codec.AppendString(b, a)
	}
	b = codec.AppendUvarint(b, uint64(len(v.Alerts)))
	for _, a := range v.Alerts {
		b = codec.AppendString(b, a.EventID)
		b = codec.AppendString(b, a.SKU)
		b = codec.AppendString(b, a.LocationID)
		b = codec.AppendVarint(b, a.EventTime)
	}
	return b
}

func decodeFloorShard(b []byte) (floorShard, error) {
	r := codec.NewReader(b)
	v := floorShard{Acks: make([]string, r.Len())}
	for i := range v.Acks {
		v.Acks[i] = r.String()
	}
	if n := r.Len(); n > 0 {
		v.Alerts = make([]floorAlert, n)
		for i := range v.Alerts {
			a := &v.Alerts[i]
			a.EventID, a.SKU, a.LocationID, a.EventTime = r.String(), r.String(), r.String(), r.Varint()
		}
	}
	if err := r.Err(); err != nil {
		return floorShard{}, fmt.Errorf("floor: decode element: %w", err)
	}
	return v, nil
}

// buildFloor adds the floor pipeline to s, with the options that cfg, the
// job's configuration in startJob, gives the job's source and sink.
func buildFloor(s beam.Scope, cfg stream.Config, alertEvery int) {
	s = s.Scope("Floor")
	batches := pubsubio.Read(s, pubsubio.PullOptions{Project: cfg.Project, Subscription: cfg.Subscription,
		MaxMessages: cfg.MaxMessages, MaxBatchWait: cfg.MaxBatchWait, PollInterval: cfg.PollInterval, Flight: cfg.Flight})
	shards := beam.ParDo(s, &floorSplitFn{Shards: cfg.Shards, AlertEvery: alertEvery,
		LatencyTag: fmt.Sprintf(`"evt-%d-`, latencySeed)}, batches)
	commits := beam.ParDo(s, &floorStateFn{}, shards)
	commit.Write(s.Scope("Stock"), commits, commit.Options{Warehouse: cfg.Warehouse, Project: cfg.Project,
		Subscription: cfg.Subscription, AlertTopic: cfg.AlertTopic, AlertEncoding: cfg.AlertEncoding,
		DeadLetterTopic: cfg.DeadLetterTopic, Flight: cfg.Flight})
}

// floorSplitFn splits a Batch by a hash of the message id into shards.
type floorSplitFn struct {
	Shards     int
	AlertEvery int    // 1 in AlertEvery latency-phase events alerts (0: none)
	LatencyTag string // in the data of the latency phase's events

	buf []floorShard
}

var markerTag = []byte(`"marker-`)

func (f *floorSplitFn) ProcessElement(b pubsubio.Batch, emit func(int, floorShard)) error {
	if f.buf == nil {
		f.buf = make([]floorShard, f.Shards)
	}
	for i := range b.Messages {
		m := &b.Messages[i]
		h := fnv.New32a()
		h.Write([]byte(m.ID))
		sum := h.Sum32()
		sh := &f.buf[int(sum%uint32(f.Shards))]
		if m.AckID != "" {
			sh.Acks = append(sh.Acks, m.AckID)
		}
		alert := bytes.Contains(m.Data, markerTag)
		if !alert && f.AlertEvery > 0 && (sum/uint32(f.Shards))%uint32(f.AlertEvery) == 0 {
			alert = bytes.Contains(m.Data, []byte(f.LatencyTag))
		}
		if !alert {
			continue
		}
		var a event.Adjustment
		if err := event.Decode(m.Data, m.Attributes[event.AttrEncoding], &a); err != nil {
			return fmt.Errorf("floor: marker %s: %w", m.ID, err)
		}
		sh.Alerts = append(sh.Alerts, floorAlert{EventID: a.EventID, SKU: a.SKU, LocationID: a.LocationID, EventTime: a.EventTime})
	}
	for i := range f.buf {
		if len(f.buf[i].Acks) > 0 || len(f.buf[i].Alerts) > 0 {
			emit(i, f.buf[i])
			f.buf[i] = floorShard{} // the emitted slices now belong to the runner
		}
	}
	return nil
}

// floorStateFn reads and writes one counter per shard and element, and turns
// the element into a Commit of its acks and alerts.
type floorStateFn struct {
	Count state.Value[int64]
}

func (f *floorStateFn) ProcessElement(sp state.Provider, shard int, v floorShard, emit func(commit.Commit)) error {
	n, _, err := f.Count.Read(sp)
	if err != nil {
		return fmt.Errorf("floor: read shard %d: %w", shard, err)
	}
	if err := f.Count.Write(sp, n+int64(len(v.Acks))); err != nil {
		return fmt.Errorf("floor: write shard %d: %w", shard, err)
	}
	c := commit.Commit{Acks: v.Acks}
	now := time.Now().UTC()
	for _, a := range v.Alerts {
		c.Alerts = append(c.Alerts, warehouse.AlertRow{AlertID: "floor-" + a.EventID, SKU: a.SKU, LocationID: a.LocationID,
			Severity: "LOW", PreviousSeverity: "OK", EventID: a.EventID, EventTime: time.UnixMicro(a.EventTime).UTC(), AlertTime: now})
	}
	emit(c)
	return nil
}
