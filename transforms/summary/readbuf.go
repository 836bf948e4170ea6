package summary

import (
	"slices"

	"github.com/inventory-events/inventory/internal/event"
)

// readBuffer is what one bundle of the CSV reader has read and not yet
// emitted: every event in the order read, each with the index of its key,
// and the keys with their shards. It emits one encoded part per shard.
//
// One slice of events for the bundle, rather than one per key as a part
// keeps them: a key's slice grew a few times in every bundle (copies, and
// write barriers while the collector ran) and every event looked up its
// shard's part and then its key in that part. Here an event costs one map
// lookup and two appends.
type readBuffer struct {
	shards int
	index  map[event.Key]int32 // key -> keys[i]
	keys   []bufferedKey
	events []keyEvent
	keyOf  []int32 // keyOf[i]: the key of events[i]
}

type bufferedKey struct {
	item  keyItem // SKU and LocationID only
	shard int
}

func newReadBuffer(shards int) *readBuffer {
	return &readBuffer{shards: shards, index: map[event.Key]int32{}}
}

// Len returns the number of events buffered.
func (r *readBuffer) Len() int { return len(r.events) }

// minRowBytes is about the shortest CSV row of an adjustment: what
// reserve divides a range's bytes by.
const minRowBytes = 60

// reserve makes room for n more events, so that a range's events are not
// copied again and again as they are added.
func (r *readBuffer) reserve(n int) {
	r.events = slices.Grow(r.events, n)
	r.keyOf = slices.Grow(r.keyOf, n)
}

// add buffers the event a.
func (r *readBuffer) add(a *event.Adjustment) {
	k := event.Key{SKU: a.SKU, LocationID: a.LocationID}
	i, ok := r.index[k]
	if !ok {
		i = int32(len(r.keys))
		r.index[k] = i
		r.keys = append(r.keys, bufferedKey{item: keyItem{SKU: k.SKU, LocationID: k.LocationID}, shard: k.Shard(r.shards)})
	}
	r.events = append(r.events, keyEvent{ID: a.EventID, Time: a.EventTime, Reason: a.Reason, Qty: a.Quantity})
	r.keyOf = append(r.keyOf, i)
}

// emit emits one part per shard that has events, encoded, with the events
// of each key in the order read, and empties r.
func (r *readBuffer) emit(emit func(int, part)) {
	if len(r.events) == 0 {
		return
	}
	// The events by key: a counting sort of their indexes, stable.
	start := make([]int32, len(r.keys)+1)
	for _, k := range r.keyOf {
		start[k+1]++
	}
	for i := range r.keys {
		start[i+1] += start[i]
	}
	next := slices.Clone(start[:len(r.keys)])
	order := make([]int32, len(r.events))
	for i, k := range r.keyOf {
		order[next[k]] = int32(i)
		next[k]++
	}
	byShard := make([][]int32, r.shards)
	for i := range r.keys {
		sh := r.keys[i].shard
		byShard[sh] = append(byShard[sh], int32(i))
	}
	var scratch []keyEvent
	for sh, keys := range byShard {
		if len(keys) == 0 {
			continue
		}
		slices.SortFunc(keys, func(a, b int32) int { return compareItems(&r.keys[a].item, &r.keys[b].item) })
		n := 0
		for _, k := range keys {
			n += int(start[k+1] - start[k])
		}
		w := newPartEncoder(false, 0, len(keys), n)
		for _, k := range keys {
			scratch = scratch[:0]
			for _, j := range order[start[k]:start[k+1]] {
				scratch = append(scratch, r.events[j])
			}
			it := r.keys[k].item
			it.Events = scratch
			w.item(&it)
		}
		emit(sh, part{raw: w.b})
	}
	r.reset()
}

// reset empties r and lets the collector have its events: the DoFn, and so
// r, outlives its bundles (the runner caches it), and r would otherwise hold
// the largest bundle's memory for the rest of the job.
func (r *readBuffer) reset() {
	clear(r.index)
	r.keys, r.events, r.keyOf = nil, nil, nil
}
