package stock

import (
	"cmp"
	"iter"
	"slices"

	"github.com/inventory-events/inventory/internal/event"
)

// stockIndex is the snapshot's items by key: two slices sorted by (sku,
// location), searched by bisection. It takes half what a Go map took (whose
// slots are half empty after growth; figures: docs/benchmarks.md#figures-behind-the-code),
// and a SKU's keys are adjacent, which a (sku, *) threshold change looks up.
type stockIndex struct {
	keys  []event.Key
	items []stockItem
}

func compareKeys(a, b event.Key) int {
	return cmp.Or(cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.LocationID, b.LocationID))
}

// newStockIndex takes keys and items (same length, in any order) and sorts
// them; of items with equal keys the last one stays, as a map would keep.
func newStockIndex(keys []event.Key, items []stockItem) stockIndex {
	if !slices.IsSortedFunc(keys, compareKeys) {
		perm := make([]int, len(keys))
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(i, j int) int { return compareKeys(keys[i], keys[j]) })
		k2, i2 := make([]event.Key, len(keys)), make([]stockItem, len(items))
		for to, from := range perm {
			k2[to], i2[to] = keys[from], items[from]
		}
		keys, items = k2, i2
	}
	n := 0
	for i := range keys {
		if n > 0 && keys[n-1] == keys[i] {
			items[n-1] = items[i]
			continue
		}
		keys[n], items[n] = keys[i], items[i]
		n++
	}
	return stockIndex{keys: keys[:n:n], items: items[:n:n]}
}

// Len returns the number of keys.
func (x stockIndex) Len() int { return len(x.keys) }

// Get returns the item of k.
func (x stockIndex) Get(k event.Key) (stockItem, bool) {
	_, it, ok := x.lookup(k)
	return it, ok
}

// lookup returns the index's copy of k with its item, if it has k.
func (x stockIndex) lookup(k event.Key) (event.Key, stockItem, bool) {
	i, ok := slices.BinarySearchFunc(x.keys, k, compareKeys)
	if !ok {
		return k, stockItem{}, false
	}
	return x.keys[i], x.items[i], true
}

// All yields every key with its item, in key order.
func (x stockIndex) All() iter.Seq2[event.Key, stockItem] {
	return func(yield func(event.Key, stockItem) bool) {
		for i, k := range x.keys {
			if !yield(k, x.items[i]) {
				return
			}
		}
	}
}

// OfSKU yields the keys of sku with their items.
func (x stockIndex) OfSKU(sku string) iter.Seq2[event.Key, stockItem] {
	return func(yield func(event.Key, stockItem) bool) {
		i, _ := slices.BinarySearchFunc(x.keys, event.Key{SKU: sku}, compareKeys)
		for ; i < len(x.keys) && x.keys[i].SKU == sku; i++ {
			if !yield(x.keys[i], x.items[i]) {
				return
			}
		}
	}
}
