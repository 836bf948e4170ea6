package stock

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/transforms/commit"
)

// memState is a runner's user state for one key, in memory, with what a
// runner does with a failed element: its writes are discarded. Only value
// and bag state are implemented (what stockFn uses).
type memState struct {
	state.Provider // nil: any other kind of state panics
	values         map[string]any
	bags           map[string][]any
	failBagWrites  int // this many bag writes fail
}

func newMemState() *memState { return &memState{values: map[string]any{}, bags: map[string][]any{}} }

func (m *memState) ReadValueState(id string) (any, []state.Transaction, error) {
	return m.values[id], nil, nil
}

func (m *memState) WriteValueState(t state.Transaction) error {
	m.values[t.Key] = t.Val
	return nil
}

func (m *memState) ClearValueState(t state.Transaction) error {
	delete(m.values, t.Key)
	return nil
}

func (m *memState) ReadBagState(id string) ([]any, []state.Transaction, error) {
	return slices.Clone(m.bags[id]), nil, nil
}

func (m *memState) WriteBagState(t state.Transaction) error {
	if m.failBagWrites > 0 {
		m.failBagWrites--
		return errors.New("injected state failure")
	}
	m.bags[t.Key] = append(m.bags[t.Key], t.Val)
	return nil
}

func (m *memState) ClearBagState(t state.Transaction) error {
	delete(m.bags, t.Key)
	return nil
}

// process runs one element through f as a runner would: on an error, the
// element's state writes are rolled back.
func (m *memState) process(t *testing.T, f *stockFn, shard int, batch shardBatch) (commit.Commit, error) {
	t.Helper()
	values, bags := maps.Clone(m.values), maps.Clone(m.bags)
	var out commit.Commit
	err := f.ProcessElement(context.Background(), m, shard, batch, testReference(), func(c commit.Commit) { out = c })
	if err != nil {
		m.values, m.bags = values, bags
	}
	return out, err
}

// TestStockCacheAfterFailedWrite: a state write fails after the batch was
// applied to the DoFn's cached ledgers (and their change logs written out).
// The runner discards the element's writes and sends it again; the DoFn
// must read the shard back from state rather than trust its cache, or the
// retried events would be duplicates of themselves and never stored.
func TestStockCacheAfterFailedWrite(t *testing.T) {
	f := &stockFn{Gen: state.MakeValueState[int64]("gen"), Ledger: state.MakeValueState[[]byte]("ledger"),
		Delta: state.MakeBagState[[]byte]("delta"), Live: state.MakeValueState[[]byte]("live")}
	f.Setup()
	m := newMemState()
	batch := func(from, n int) shardBatch {
		var recs []eventRecord
		for i := from; i < from+n; i++ {
			recs = append(recs, eventRecord{MessageID: fmt.Sprint("m", i), Adj: event.Adjustment{EventID: fmt.Sprint("e", i),
				SKU: "S", LocationID: "L1", Reason: event.Sold, Quantity: -1, EventTime: at(1 + i), Source: "test"}})
		}
		return shardBatch{Records: recs}
	}
	if _, err := m.process(t, f, 0, batch(0, 3)); err != nil { // the key's base: 20 - 3
		t.Fatal(err)
	}
	if _, err := m.process(t, f, 0, batch(3, 2)); err != nil { // a delta: 15
		t.Fatal(err)
	}
	m.failBagWrites = 1
	if _, err := m.process(t, f, 0, batch(5, 2)); err == nil {
		t.Fatal("the injected state failure was not returned")
	}
	out, err := m.process(t, f, 0, batch(5, 2)) // the retry
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Adjustments {
		if r.Status != ledger.Applied.String() {
			t.Errorf("retried %s: %s, want APPLIED", r.EventID, r.Status)
		}
	}
	if n := len(out.Levels); n != 2 || out.Levels[n-1].OnHand != 13 {
		t.Fatalf("retried batch: levels %+v, want on hand 14 then 13", out.Levels)
	}
	// What is stored agrees: a new DoFn instance reads 13 from state.
	g := &stockFn{Gen: f.Gen, Ledger: f.Ledger, Delta: f.Delta, Live: f.Live}
	g.Setup()
	out, err = m.process(t, g, 0, batch(7, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Levels) != 1 || out.Levels[0].OnHand != 12 {
		t.Fatalf("read back from state: levels %+v, want on hand 12", out.Levels)
	}
}
