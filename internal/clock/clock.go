// Package clock is the wall clock of every rule that asks "what time is it
// now": the newest event time the contract accepts, the default report date,
// the nightly trigger's "yesterday", a generator's default start.
//
// Stock, dedup and alert rules never read it: they are functions of event
// time (see internal/ledger). What reads it reads it through Now, so a test
// run can move the whole system, test binaries and the processes they start,
// to another day at once: with INVENTORY_CLOCK_SHIFT set to a Go duration
// (for example 8760h), Now is the wall clock plus that duration. CI runs the
// slow tier once a year ahead this way, so a fixture whose fixed date will
// age out fails today rather than next month. The variable is for tests;
// a process that honours it says so once, at INFO level (WARN would add a
// line to every command's stderr in the year-ahead run, which tests of the
// commands' output read).
package clock

import (
	"log/slog"
	"os"
	"sync"
	"time"
)

// shiftEnv names the environment variable that moves Now.
const shiftEnv = "INVENTORY_CLOCK_SHIFT"

var shift = sync.OnceValue(func() time.Duration {
	v := os.Getenv(shiftEnv)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		slog.Error("clock: ignoring a shift that is not a Go duration", "env", shiftEnv, "value", v, "err", err)
		return 0
	}
	if d != 0 {
		slog.Info("clock: the wall clock is shifted, for tests only", "env", shiftEnv, "shift", d)
	}
	return d
})

// Now is the current time, shifted by INVENTORY_CLOCK_SHIFT if it is set.
func Now() time.Time {
	if d := shift(); d != 0 {
		return time.Now().Add(d)
	}
	return time.Now()
}

// Shift is the shift in force (0 unless INVENTORY_CLOCK_SHIFT is set).
func Shift() time.Duration { return shift() }
