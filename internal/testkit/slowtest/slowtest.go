// Package slowtest marks the tests of the slow tier: those that run a Prism
// job, a child process, a real build or a long timer. `go test -short` (make
// test-short) skips them, so that the unit tier runs in under a minute;
// make test and CI run everything.
package slowtest

import "testing"

// Skip skips t under -short, saying why it belongs to the slow tier.
func Skip(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow tier (-short): " + why)
	}
}
