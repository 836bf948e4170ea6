package ledger

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/inventory-events/inventory/internal/event"
)

// TestChangesRebuildState applies random streams (deltas, counts, redeliveries,
// events older than the horizon, jumps in time that sweep ids and deltas) to a
// State that tracks its changes, writes it now whole and now as change
// records, and checks after every write that the full encoding plus the
// records since decodes to the same State, and that the decoded State then
// treats the next events exactly as the live one does.
func TestChangesRebuildState(t *testing.T) {
	const horizon = 10 * time.Minute
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			live := &State{}
			if rng.IntN(2) == 0 {
				live = FromSnapshot(int64(rng.IntN(50)), t0.UnixMicro(), 10)
			}
			base := live.AppendBinary(nil)
			live.TrackChanges()
			var records [][]byte
			var ids []string
			clock := 0 // minutes after t0
			for step := range 400 {
				a := randomEvent(rng, step, &clock, &ids)
				live.Apply(a, 10, horizon)
				if rng.IntN(4) != 0 {
					continue
				}
				if rng.IntN(8) == 0 {
					base, records = live.AppendBinary(nil), nil
					live.TrackChanges()
				} else {
					records = append(records, live.AppendChanges(nil))
				}
				got := decodeWith(t, base, records)
				assertSameState(t, got, live)
				// The decoded state must go on exactly as the live one.
				copyLive := decodeWith(t, live.AppendBinary(nil), nil)
				copyLive.SweptBefore, copyLive.Oldest = live.SweptBefore, live.Oldest
				for range 5 {
					c := clock
					next := randomEvent(rng, 1000+step, &c, &ids)
					r1, r2 := copyLive.Apply(next, 10, horizon), got.Apply(next, 10, horizon)
					if r1 != r2 {
						t.Fatalf("step %d: event %+v: live %+v, decoded %+v", step, next, r1, r2)
					}
				}
			}
		})
	}
}

// randomEvent returns a random event: mostly new deltas near the clock, some
// counts, some redeliveries of an earlier id, some from long ago, and now and
// then a jump of the clock past the horizon.
func randomEvent(rng *rand.Rand, step int, clock *int, ids *[]string) *event.Adjustment {
	switch rng.IntN(20) {
	case 0:
		*clock += 5 + rng.IntN(15) // jump: sweeps what is older than the horizon
	case 1, 2:
		*clock++
	}
	min := *clock - rng.IntN(4)
	if rng.IntN(15) == 0 {
		min = *clock - 8 - rng.IntN(20) // old: maybe beyond the horizon
	}
	if len(*ids) > 0 && rng.IntN(8) == 0 {
		id := (*ids)[rng.IntN(len(*ids))]
		return ev(id, event.Sold, -1, min)
	}
	id := fmt.Sprintf("e%d-%d", step, rng.IntN(1000))
	*ids = append(*ids, id)
	if rng.IntN(10) == 0 {
		return ev(id, event.Counted, int64(rng.IntN(40)), min)
	}
	q := int64(rng.IntN(11) - 5)
	if q == 0 {
		q = 1
	}
	return ev(id, event.Received, q, min)
}

func decodeWith(t *testing.T, base []byte, records [][]byte) *State {
	t.Helper()
	s := new(State)
	if err := s.UnmarshalBinary(base); err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if err := s.ApplyChanges(r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func assertSameState(t *testing.T, got, want *State) {
	t.Helper()
	g, w := *got, *want
	if !maps.Equal(maps.Collect(g.Seen.All()), maps.Collect(w.Seen.All())) {
		t.Fatalf("ids: got %v, want %v", maps.Collect(g.Seen.All()), maps.Collect(w.Seen.All()))
	}
	if len(g.Deltas) == 0 && len(w.Deltas) == 0 {
		g.Deltas, w.Deltas = nil, nil
	}
	g.Seen, w.Seen = IDs{}, IDs{}
	g.Oldest, w.Oldest = 0, 0
	g.SweptBefore, w.SweptBefore = 0, 0
	g.changes, w.changes = nil, nil
	g.tracking, w.tracking = false, false
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got %+v\nwant %+v", g, w)
	}
}

func TestChangesRecordOnlyWhatIsNew(t *testing.T) {
	s := &State{}
	for i := range 100 {
		s.Apply(ev(fmt.Sprintf("e%03d", i), event.Received, 1, i%5), 10, time.Hour)
	}
	full := len(s.AppendBinary(nil))
	s.TrackChanges()
	s.Apply(ev("new", event.Sold, -1, 5), 10, time.Hour)
	if n := len(s.AppendChanges(nil)); n*10 > full {
		t.Fatalf("a change record of one event is %d bytes, the whole state %d", n, full)
	}
	if n := len(s.AppendChanges(nil)); n > 30 {
		t.Fatalf("a change record with no change is %d bytes", n)
	}
}

// TestStateSize guards the memory of a key: a million keys hold a million
// States, and 160 bytes is a Go size class (the next one is 176).
func TestStateSize(t *testing.T) {
	if n := unsafe.Sizeof(State{}); n > 160 {
		t.Fatalf("a State takes %d bytes, want at most 160: keep small fields together", n)
	}
}
