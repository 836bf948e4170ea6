package stock

import (
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

func init() {
	beam.RegisterType(reflect.TypeOf(shardBatch{}))
	beam.RegisterCoder(reflect.TypeOf(shardBatch{}), encodeShard, decodeShard)
}

// eventRecord is one valid adjustment with the Pub/Sub metadata the warehouse
// keeps.
type eventRecord struct {
	Adj         event.Adjustment
	MessageID   string
	PublishTime int64 // Unix µs
	Attributes  map[string]string
	AckID       string // see pubsubio.Message.AckID
}

// shardBatch is the valid adjustments of one batch whose keys hash to one shard,
// in arrival order. It travels as KV<int, shardBatch>, the int being the shard.
type shardBatch struct {
	Records []eventRecord
	// Updates are threshold changes for the shard's or key's stock
	// (threshold.go); an element holds records or updates, not both.
	Updates []thresholdUpdate
}

func wrapCoderErr(err error) error {
	if err != nil {
		return fmt.Errorf("stock: decode element: %w", err)
	}
	return nil
}

func encodeShard(v shardBatch) []byte {
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
		b = pubsubio.AppendAttrs(b, rec.Attributes)
		b = codec.AppendString(b, rec.AckID)
	}
	return appendUpdates(b, v.Updates)
}

func decodeShard(b []byte) (shardBatch, error) {
	r := codec.NewReader(b)
	v := shardBatch{Records: make([]eventRecord, r.Len())}
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
		rec.Attributes = pubsubio.ReadAttrs(r)
		rec.AckID = r.String()
	}
	v.Updates = readUpdates(r)
	return v, wrapCoderErr(r.Err())
}
