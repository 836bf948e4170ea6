package pubsubio

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

// size is what the message counts for in a batch's and the Flight's byte
// bounds: its payload and attributes (event.MessageSize).
func (m *Message) size() int { return event.MessageSize(m.Data, m.Attributes) }

// Batch is the messages of one pull: the unit the source emits, so that
// Prism's per-element cost is paid once per pull, not once per message.
type Batch struct {
	Messages []Message
}

func wrapCoderErr(err error) error {
	if err != nil {
		return fmt.Errorf("pubsubio: decode element: %w", err)
	}
	return nil
}

// The coders below are hand-written: Beam's schema coder walks structs by
// reflection per element, which was the largest cost in a profile.

// AppendAttrs appends the encoding of message attributes to b.
func AppendAttrs(b []byte, m map[string]string) []byte {
	b = codec.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = codec.AppendString(b, k)
		b = codec.AppendString(b, v)
	}
	return b
}

// ReadAttrs reads what AppendAttrs wrote.
func ReadAttrs(r *codec.Reader) map[string]string {
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
		b = AppendAttrs(b, m.Attributes)
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
		m.Attributes = ReadAttrs(r)
		m.PublishTime = r.Varint()
		m.AckID = r.String()
	}
	return v, wrapCoderErr(r.Err())
}
