// Package registry holds the few objects that the code running a Beam job
// shares with that job's DoFns in the same process, each reached by a
// string id that the DoFn carries in an exported field.
//
// Why not Beam's own means:
//   - A DoFn is serialized into the job (its exported fields, as JSON), and a
//     worker builds its own copy: a field cannot hold a pointer to an object
//     of the process that built the pipeline, only something that names it.
//   - A side input would carry data, not a live object (a drain's count of
//     what is in flight, a progress meter read while the job runs), and on
//     Prism a stateful stage with a side input runs only when its input
//     watermark moves, so events would wait for the slowest source; Prism
//     also reads a side input afresh for every bundle (docs/beam-notes.md).
//   - Beam state is per key and window, inside the job: nothing outside the
//     job reads it while it runs.
//
// So a Table maps ids to objects, for jobs whose workers run in this
// process (Prism in-process, tests, the local stack). On a remote worker
// the id names nothing: each user says what it does then (fail, or count
// nothing). Three tables exist: the Pub/Sub sources' Flight
// (transforms/pubsubio), the stock stage's reference data handed over in
// memory (transforms/stock), and the nightly readers' Meter
// (transforms/summary).
package registry

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
)

// Table maps ids to values of one kind. The zero Table is empty and ready;
// a Table must not be copied. Keep, if positive, bounds the table to its
// Keep newest ids (for values nobody removes, as when a process runs job
// after job); otherwise an id stays until Remove.
type Table[T any] struct {
	Keep int

	mu  sync.Mutex
	m   map[string]T
	ids []string // oldest first
}

// NewID returns a fresh random id starting with prefix.
func NewID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Add registers v under id, replacing what id held.
func (t *Table[T]) Add(id string, v T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(id, v)
}

// Lookup returns the value registered under id.
func (t *Table[T]) Lookup(id string) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.m[id]
	return v, ok
}

// LookupOrAdd returns the value registered under id, registering make()
// first if there is none: for a value that whichever side comes first
// (the job's step that fills it, or the DoFns that wait for it) creates.
func (t *Table[T]) LookupOrAdd(id string, make func() T) T {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.m[id]; ok {
		return v
	}
	v := make()
	t.add(id, v)
	return v
}

// Remove unregisters id.
func (t *Table[T]) Remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[id]; !ok {
		return
	}
	delete(t.m, id)
	for i, x := range t.ids {
		if x == id {
			t.ids = append(t.ids[:i], t.ids[i+1:]...)
			break
		}
	}
}

func (t *Table[T]) add(id string, v T) {
	if t.m == nil {
		t.m = map[string]T{}
	}
	if _, ok := t.m[id]; !ok {
		if t.Keep > 0 && len(t.ids) == t.Keep {
			delete(t.m, t.ids[0])
			t.ids = t.ids[1:]
		}
		t.ids = append(t.ids, id)
	}
	t.m[id] = v
}
