package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/inventory-events/inventory/pipelines/launch"
)

// exitCode is an error that only carries the exit code of the command run
// again by launch.ReexecConfined, which said everything itself.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// reexecConfined runs the command again where Prism's job server can be
// confined (launch.ReexecConfined); ran says whether it did, err then
// carries its exit code. Call it first in a command that runs the local stack.
func reexecConfined() (ran bool, err error) {
	code, ran, err := launch.ReexecConfined()
	if !ran {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if code != 0 {
		return true, exitCode(code)
	}
	return true, nil
}

// startPrism starts the job server of the local jobs (launch.StartPrism)
// and, where it cannot be confined to this machine, says so on out first.
func startPrism(ctx context.Context, out io.Writer) error {
	p, err := launch.StartPrism(ctx)
	if err != nil {
		return err
	}
	if p.Note != "" {
		fmt.Fprintf(out, "WARNING: %s\n", p.Note)
	}
	return nil
}

// warnExposed says on out when addr (host:port), where a part of the local
// stack listens, is reachable from other machines: none of them checks who
// calls.
func warnExposed(out io.Writer, what, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	fmt.Fprintf(out, "WARNING: %s listens on %s, reachable from other machines, without authentication; --host localhost keeps it on this machine\n", what, addr)
}

// isExit reports whether err is only an exit code, and which.
func isExit(err error) (int, bool) {
	var c exitCode
	if errors.As(err, &c) {
		return int(c), true
	}
	return 0, false
}
