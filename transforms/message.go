package transforms

import (
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
)

func init() {
	beam.RegisterType(reflect.TypeOf(Batch{}))
	beam.RegisterCoder(reflect.TypeOf(Batch{}), encodeBatch, decodeBatch)
	beam.RegisterType(reflect.TypeOf(Shard{}))
	beam.RegisterCoder(reflect.TypeOf(Shard{}), encodeShard, decodeShard)
}

// Message is one Pub/Sub message (or one replayed CSV row) as the job sees it.
type Message struct {
	ID          string
	Data        []byte
	Attributes  map[string]string
	PublishTime int64 // Unix µs; 0 when unknown
	// AckID acknowledges the message once its outputs are stored ("": the
	// source acks by itself, as Dataflow's and the CSV replay do).
	AckID string
}

// Batch is the messages of one pull: the unit the source emits, so that
// Prism's per-element cost is paid once per pull, not once per message.
type Batch struct {
	Messages []Message
}

// Record is one valid adjustment with the Pub/Sub metadata the warehouse
// keeps.
type Record struct {
	Adj         event.Adjustment
	MessageID   string
	PublishTime int64 // Unix µs
	Attributes  map[string]string
	AckID       string // see Message.AckID
}

// Shard is the valid adjustments of one batch whose keys hash to one shard,
// in arrival order. It travels as KV<int, Shard>, the int being the shard.
type Shard struct {
	Records []Record
	// Updates are threshold changes for the shard's or key's stock
	// (threshold.go); an element holds records or updates, not both.
	Updates []Update
}

func wrapCoderErr(err error) error {
	if err != nil {
		return fmt.Errorf("transforms: decode element: %w", err)
	}
	return nil
}

// The coders below are hand-written: Beam's schema coder walks structs by
// reflection per element, which was the largest cost in a profile.

func appendAttrs(b []byte, m map[string]string) []byte {
	b = codec.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = codec.AppendString(b, k)
		b = codec.AppendString(b, v)
	}
	return b
}

func readAttrs(r *codec.Reader) map[string]string {
	n := r.Len()
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.String()
		m[k] = r.String()
	}
	return m
}

func encodeBatch(v Batch) []byte {
	n := 8
	for i := range v.Messages {
		n += len(v.Messages[i].Data) + len(v.Messages[i].ID) + 64
	}
	b := make([]byte, 0, n)
	b = codec.AppendUvarint(b, uint64(len(v.Messages)))
	for i := range v.Messages {
		m := &v.Messages[i]
		b = codec.AppendString(b, m.ID)
		b = codec.AppendBytes(b, m.Data)
		b = appendAttrs(b, m.Attributes)
		b = codec.AppendVarint(b, m.PublishTime)
		b = codec.AppendString(b, m.AckID)
	}
	return b
}

func decodeBatch(b []byte) (Batch, error) {
	r := codec.NewReader(b)
	v := Batch{Messages: make([]Message, r.Len())}
	for i := range v.Messages {
		m := &v.Messages[i]
		m.ID = r.String()
		m.Data = r.Bytes()
		m.Attributes = readAttrs(r)
		m.PublishTime = r.Varint()
		m.AckID = r.String()
	}
	return v, wrapCoderErr(r.Err())
}

func encodeShard(v Shard) []byte {
	b := make([]byte, 0, 128*len(v.Records)+8)
	b = codec.AppendUvarint(b, uint64(len(v.Records)))
	for i := range v.Records {
		rec := &v.Records[i]
		a := &rec.Adj
		b = codec.AppendString(b, a.EventID)
		b = codec.AppendString(b, a.SKU)
		b = codec.AppendString(b, a.LocationID)
		b = codec.AppendVarint(b, int64(a.Reason))
		b = codec.AppendVarint(b, a.Quantity)
		b = codec.AppendVarint(b, a.EventTime)
		b = codec.AppendString(b, a.Source)
		b = codec.AppendString(b, rec.MessageID)
		b = codec.AppendVarint(b, rec.PublishTime)
		b = appendAttrs(b, rec.Attributes)
		b = codec.AppendString(b, rec.AckID)
	}
	return appendUpdates(b, v.Updates)
}

func decodeShard(b []byte) (Shard, error) {
	r := codec.NewReader(b)
	v := Shard{Records: make([]Record, r.Len())}
	for i := range v.Records {
		rec := &v.Records[i]
		a := &rec.Adj
		a.EventID = r.String()
		a.SKU = r.String()
		a.LocationID = r.String()
		a.Reason = event.Reason(r.Varint())
		a.Quantity = r.Varint()
		a.EventTime = r.Varint()
		a.Source = r.String()
		rec.MessageID = r.String()
		rec.PublishTime = r.Varint()
		rec.Attributes = readAttrs(r)
		rec.AckID = r.String()
	}
	v.Updates = readUpdates(r)
	return v, wrapCoderErr(r.Err())
}
