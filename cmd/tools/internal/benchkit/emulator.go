package benchkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
)

// ServeEmulatorFlag is the flag a tool that calls StartEmulator must accept:
// given it, the tool calls ServeEmulator and nothing else.
const ServeEmulatorFlag = "serve_emulator"

// StartEmulator starts the local Pub/Sub and returns its address: in a child
// process (this binary with --serve_emulator), so that the peak RSS measured
// here is not the broker's backlog; or, when inProcess, in this process.
func StartEmulator(inProcess bool) (addr string, stop func(), err error) {
	if inProcess {
		srv, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
		if err != nil {
			return "", nil, fmt.Errorf("start the emulator: %w", err)
		}
		return srv.Addr(), func() { srv.Close() }, nil
	}
	cmd := exec.Command(os.Args[0], "--"+ServeEmulatorFlag)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the emulator: %w", err)
	}
	stop = func() { in.Close(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the emulator's address: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// ServeEmulator is the child of StartEmulator: it prints the local Pub/Sub's
// address and serves until its stdin closes.
func ServeEmulator() error {
	srv, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Println(srv.Addr())
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}
