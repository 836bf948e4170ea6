package stock

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

// benchMessages returns one JSON message per key, with the offsets of the
// digits of its event id and of its event_time, to rewrite in place.
type benchMsg struct {
	m       pubsubio.Message
	idAt    int
	timeAt  int
	timeLen int
}

func benchMessages(keys int, base time.Time) []benchMsg {
	out := make([]benchMsg, keys)
	for i := range out {
		reason, qty := event.Sold, int64(-1)
		if i%2 == 1 {
			reason, qty = event.Received, 1
		}
		a := event.Adjustment{EventID: "evt-0000000000", SKU: fmt.Sprintf("SKU-%05d", i/8), LocationID: fmt.Sprintf("STORE-%03d", i%8),
			Reason: reason, Quantity: qty, EventTime: base.UnixMicro(), Source: "bench"}
		data, err := event.MarshalJSON(&a)
		if err != nil {
			panic(err)
		}
		ts := base.Format(time.RFC3339)
		out[i] = benchMsg{m: pubsubio.Message{ID: "m", Data: data, Attributes: map[string]string{event.AttrEncoding: event.EncodingJSON}},
			idAt: bytes.Index(data, []byte("0000000000")), timeAt: bytes.Index(data, []byte(ts)), timeLen: len(ts)}
		if out[i].idAt < 0 || out[i].timeAt < 0 {
			panic("benchMessages: payload layout: " + string(data))
		}
	}
	return out
}

// BenchmarkCore is the per-event work of the job without Beam: decode +
// validate (decodeMessage), the key's ledger in the shard (ledgers.Get) and
// dedup + stock (ledger.State.Apply), over 2,000 keys with event times
// advancing 1 s per event, so that the dedup horizon expires old ids.
func BenchmarkCore(b *testing.B) {
	const keys = 2000
	base := time.Now().Add(-400 * 24 * time.Hour).Truncate(24 * time.Hour).UTC()
	msgs := benchMessages(keys, base)
	ref, err := newReference(ledger.NewThresholds(10), base.UnixMicro(), nil, nil).Data()
	if err != nil {
		b.Fatal(err)
	}
	l := newLedgers()
	now := time.Now()
	var a event.Adjustment
	var tbuf []byte
	var idbuf [10]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bm := &msgs[i%keys]
		d := bm.m.Data
		id := strconv.AppendInt(idbuf[:0], int64(i), 10)
		copy(d[bm.idAt:bm.idAt+10], "0000000000")
		copy(d[bm.idAt+10-len(id):bm.idAt+10], id)
		tbuf = base.Add(time.Duration(i)*time.Second).AppendFormat(tbuf[:0], time.RFC3339)
		copy(d[bm.timeAt:bm.timeAt+bm.timeLen], tbuf)
		if err := decodeMessage(&bm.m, now, &a); err != nil {
			b.Fatal(err)
		}
		k := a.Key()
		th := ref.Threshold(k)
		st, err := l.Get(k, ref, th)
		if err != nil {
			b.Fatal(err)
		}
		if r := st.Apply(&a, th, 0); r.Outcome != ledger.Applied {
			b.Fatalf("event %d: %v", i, r.Outcome)
		}
	}
}
