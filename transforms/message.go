package transforms

import (
	"encoding/binary"
	"errors"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

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
}

var errShortCoder = errors.New("transforms: truncated element")

// The coders below are hand-written: Beam's schema coder walks structs by
// reflection per element, which was the largest cost in a profile.

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAttrs(b []byte, m map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errShortCoder, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errShortCoder, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = errShortCoder, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) attrs() map[string]string {
	n := r.uvarint()
	if n == 0 || n > uint64(len(r.b)) {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := r.string()
		m[k] = r.string()
	}
	return m
}

func encodeBatch(v Batch) []byte {
	n := 8
	for i := range v.Messages {
		n += len(v.Messages[i].Data) + len(v.Messages[i].ID) + 64
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(v.Messages)))
	for i := range v.Messages {
		m := &v.Messages[i]
		b = appendString(b, m.ID)
		b = appendBytes(b, m.Data)
		b = appendAttrs(b, m.Attributes)
		b = binary.AppendVarint(b, m.PublishTime)
		b = appendString(b, m.AckID)
	}
	return b
}

func decodeBatch(b []byte) (Batch, error) {
	r := reader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return Batch{}, errShortCoder
	}
	v := Batch{Messages: make([]Message, n)}
	for i := range v.Messages {
		m := &v.Messages[i]
		m.ID = r.string()
		m.Data = r.bytes()
		m.Attributes = r.attrs()
		m.PublishTime = r.varint()
		m.AckID = r.string()
	}
	return v, r.err
}

func encodeShard(v Shard) []byte {
	b := make([]byte, 0, 128*len(v.Records)+8)
	b = binary.AppendUvarint(b, uint64(len(v.Records)))
	for i := range v.Records {
		rec := &v.Records[i]
		a := &rec.Adj
		b = appendString(b, a.EventID)
		b = appendString(b, a.SKU)
		b = appendString(b, a.LocationID)
		b = binary.AppendVarint(b, int64(a.Reason))
		b = binary.AppendVarint(b, a.Quantity)
		b = binary.AppendVarint(b, a.EventTime)
		b = appendString(b, a.Source)
		b = appendString(b, rec.MessageID)
		b = binary.AppendVarint(b, rec.PublishTime)
		b = appendAttrs(b, rec.Attributes)
		b = appendString(b, rec.AckID)
	}
	return b
}

func decodeShard(b []byte) (Shard, error) {
	r := reader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return Shard{}, errShortCoder
	}
	v := Shard{Records: make([]Record, n)}
	for i := range v.Records {
		rec := &v.Records[i]
		a := &rec.Adj
		a.EventID = r.string()
		a.SKU = r.string()
		a.LocationID = r.string()
		a.Reason = event.Reason(r.varint())
		a.Quantity = r.varint()
		a.EventTime = r.varint()
		a.Source = r.string()
		rec.MessageID = r.string()
		rec.PublishTime = r.varint()
		rec.Attributes = r.attrs()
		rec.AckID = r.string()
	}
	return v, r.err
}
