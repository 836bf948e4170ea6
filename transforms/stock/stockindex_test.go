package stock

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/event"
)

func TestStockIndex(t *testing.T) {
	k := func(s, l string) event.Key { return event.Key{SKU: s, LocationID: l} }
	keys := []event.Key{k("B", "2"), k("A", "9"), k("B", "1"), k("A", "9"), k("C", "1"), k("B", "10")}
	items := []stockItem{{OnHand: 1}, {OnHand: 2}, {OnHand: 3}, {OnHand: 4}, {OnHand: 5}, {OnHand: 6}}
	want := map[event.Key]stockItem{}
	for i, key := range keys {
		want[key] = items[i] // the last of equal keys wins, as in a map
	}
	x := newStockIndex(slices.Clone(keys), slices.Clone(items))
	if x.Len() != len(want) {
		t.Fatalf("Len %d, want %d", x.Len(), len(want))
	}
	for key, it := range want {
		if got, ok := x.Get(key); !ok || got.OnHand != it.OnHand {
			t.Errorf("Get(%v) = %+v, %v; want %+v", key, got, ok, it)
		}
	}
	if _, ok := x.Get(k("B", "3")); ok {
		t.Error("Get of a missing key found it")
	}
	if got := maps.Collect(x.All()); len(got) != len(want) {
		t.Errorf("All: %v, want %v", got, want)
	}
	var ofB []string
	for key := range x.OfSKU("B") {
		ofB = append(ofB, key.LocationID)
	}
	if !slices.Equal(ofB, []string{"1", "10", "2"}) {
		t.Errorf("OfSKU(B) = %v, want [1 10 2]", ofB)
	}
	for range x.OfSKU("Z") {
		t.Error("OfSKU of a missing SKU yielded a key")
	}
}

// TestReferenceHandoff: the stock DoFn waits for the reference data of
// its handoff, gets what the reading step handed over (or its error), and
// gives up with its context.
func TestReferenceHandoff(t *testing.T) {
	ref := testReference()
	want, err := ref.Data()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *refData)
	go func() {
		d, err := waitReference(context.Background(), "handoff-ok")
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	h := handoffOf("handoff-ok")
	h.data = want
	close(h.ready)
	if d := <-got; d != want {
		t.Errorf("waitReference = %p, want the data handed over (%p)", d, want)
	}

	h = handoffOf("handoff-failed")
	h.err = errors.New("snapshot unreadable")
	close(h.ready)
	if _, err := waitReference(context.Background(), "handoff-failed"); err == nil || !strings.Contains(err.Error(), "snapshot unreadable") {
		t.Errorf("waitReference of a failed read = %v, want its error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := waitReference(ctx, "handoff-never"); !errors.Is(err, context.Canceled) {
		t.Errorf("waitReference with a cancelled context = %v, want context.Canceled", err)
	}
}
