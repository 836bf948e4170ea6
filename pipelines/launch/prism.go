package launch

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
)

// Prism is the job server of Beam's Prism runner that this process's local
// jobs run on (StartPrism).
type Prism struct {
	// Endpoint is the job server's address, localhost:PORT, also set as
	// Beam's --endpoint.
	Endpoint string
	// Confined says that nothing but this machine's loopback reaches the job
	// server. When false, Note says why, for the operator.
	Confined bool
	Note     string
}

// Why the job server is confined: Beam's Prism (v2.77.0 and v2.78.0) serves
// its job API, which takes jobs that run commands (--environment_type=PROCESS),
// and its FnAPI on one listener opened with net.Listen("tcp", ":PORT"): every
// interface, no authentication. No Prism entry point takes an address or a
// listener. StartPrism therefore creates the listener where every interface is
// loopback: in a network namespace of its own, which has only "lo", and
// forwards one loopback port of this machine to it (docs/security.md, "Prism
// job server").

var prismOnce struct {
	sync.Mutex
	p *Prism
}

// StartPrism starts Prism's job server for this process's local jobs, once
// per process, and points Beam's --endpoint at it, with
// --environment_type=LOOPBACK unless one is set: prism.Execute (nightly.Run,
// RunPrism) and beamx.Run with --runner=prism then submit to it, and run the
// jobs' workers in this process, as they would on the Prism that
// prism.Execute starts by itself.
//
// On Linux with the right to create a network namespace (root, or a user
// namespace: ConfineProcess), the job server listens only inside a
// namespace of its own, reached through a forwarder on this machine's
// loopback. Elsewhere it returns a Prism that is not Confined, with a Note
// to show the operator, and sets nothing: prism.Execute then starts Beam's
// own job server, on every interface. When --endpoint is set already (a
// Prism started elsewhere), it returns that endpoint, Confined false and no
// Note: whoever runs that Prism answers for it.
func StartPrism(ctx context.Context) (*Prism, error) {
	prismOnce.Lock()
	defer prismOnce.Unlock()
	if prismOnce.p != nil {
		return prismOnce.p, nil
	}
	if ep := *jobopts.Endpoint; ep != "" {
		return &Prism{Endpoint: ep}, nil
	}
	p, err := startConfinedPrism(ctx)
	if err != nil {
		return nil, fmt.Errorf("launch: start Prism: %w", err)
	}
	if p.Confined {
		*jobopts.Endpoint = p.Endpoint
		if *jobopts.EnvironmentType == "" {
			*jobopts.EnvironmentType = "loopback"
		}
	}
	prismOnce.p = p
	return p, nil
}

// unconfinedNote is what an operator is told when the job server cannot be
// confined: reason says why.
func unconfinedNote(reason string) string {
	return "Prism's job server will listen on every network interface, without authentication: " +
		"anyone who can reach this machine can run commands on it through the local jobs' runner (" + reason +
		"); run on Linux, as root or with unprivileged user namespaces allowed, or only on a trusted network " +
		"(docs/security.md, \"Prism job server\")"
}

// IsPrism reports whether runner names Beam's Prism runner, the default
// runner of beamx.Run ("" included), in any case.
func IsPrism(runner string) bool {
	r := strings.ToLower(strings.TrimSpace(runner))
	return r == "" || r == "prism" || r == "prismrunner"
}
