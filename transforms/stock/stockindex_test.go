package stock

import (
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

// TestReferenceInProcess: a Reference without data is found among what
// this process read, and a digest it never read is a clear error.
func TestReferenceInProcess(t *testing.T) {
	ref := testReference()
	d, err := ref.Data()
	if err != nil {
		t.Fatal(err)
	}
	keepInProcess(ref.Digest, d)
	got, err := Reference{Digest: ref.Digest}.Data()
	if err != nil || got != d {
		t.Fatalf("in-process reference: %p, %v; want %p", got, err, d)
	}
	if _, err := (Reference{Digest: "not read here"}).Data(); err == nil || !strings.Contains(err.Error(), "not in this process") {
		t.Fatalf("unknown digest: %v, want an error saying it is not in this process", err)
	}
}
