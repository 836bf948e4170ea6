//go:build !linux

package launch

import (
	"context"
	"runtime"
)

// startConfinedPrism has no way to confine the job server off Linux: no
// network namespaces, and Beam's job server takes no address.
func startConfinedPrism(context.Context) (*Prism, error) {
	return &Prism{Note: unconfinedNote("there is no way to confine it on " + runtime.GOOS)}, nil
}

// ReexecConfined does nothing off Linux (see the Linux version).
func ReexecConfined() (code int, ran bool, err error) { return 0, false, nil }
