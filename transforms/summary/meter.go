package summary

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
)

// Meter counts what one job's readers in this process have read, for a
// progress line: adjustment rows from the warehouse and bytes of CSV input.
// The code that runs the job owns it: it creates one (NewMeter), passes its
// ID to ReadCSV and ReadWarehouse, reads it while the job runs, and closes
// it. The readers find it by ID, since DoFns are serialized into the job;
// with no ID, or on a remote worker, they count nothing.
type Meter struct {
	id          string
	Rows, Bytes atomic.Int64
}

var meters struct {
	mu  sync.Mutex
	ids map[string]*Meter
}

// NewMeter returns a new Meter, registered in this process until Close.
func NewMeter() *Meter {
	var b [8]byte
	_, _ = rand.Read(b[:])
	m := &Meter{id: "meter-" + hex.EncodeToString(b[:])}
	meters.mu.Lock()
	defer meters.mu.Unlock()
	if meters.ids == nil {
		meters.ids = map[string]*Meter{}
	}
	meters.ids[m.id] = m
	return m
}

// ID is what a job's options name the Meter by.
func (m *Meter) ID() string { return m.id }

// Close unregisters the Meter.
func (m *Meter) Close() {
	meters.mu.Lock()
	defer meters.mu.Unlock()
	delete(meters.ids, m.id)
}

// lookupMeter returns the Meter registered under id, or nil.
func lookupMeter(id string) *Meter {
	if id == "" {
		return nil
	}
	meters.mu.Lock()
	defer meters.mu.Unlock()
	return meters.ids[id]
}

// addRows and addBytes count on a Meter that may be nil.
func (m *Meter) addRows(n int64) {
	if m != nil {
		m.Rows.Add(n)
	}
}

func (m *Meter) addBytes(n int64) {
	if m != nil {
		m.Bytes.Add(n)
	}
}
