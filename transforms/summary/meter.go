package summary

import (
	"sync/atomic"

	"github.com/inventory-events/inventory/internal/registry"
)

// Meter counts what one job's readers in this process have read, for a
// progress line: adjustment rows from the warehouse and bytes of CSV input.
// The code that runs the job owns it: it creates one (NewMeter), passes its
// ID to ReadCSV and ReadWarehouse, reads it while the job runs, and closes
// it. The readers find it by ID in a registry.Table (which says why);
// with no ID, or on a remote worker, they count nothing.
type Meter struct {
	id          string
	Rows, Bytes atomic.Int64
}

// meters are the Meters of this process by ID, until Close.
var meters registry.Table[*Meter]

// NewMeter returns a new Meter, registered in this process until Close.
func NewMeter() *Meter {
	m := &Meter{id: registry.NewID("meter-")}
	meters.Add(m.id, m)
	return m
}

// ID is what a job's options name the Meter by.
func (m *Meter) ID() string { return m.id }

// Close unregisters the Meter.
func (m *Meter) Close() { meters.Remove(m.id) }

// lookupMeter returns the Meter registered under id, or nil.
func lookupMeter(id string) *Meter {
	if id == "" {
		return nil
	}
	m, _ := meters.Lookup(id)
	return m
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
