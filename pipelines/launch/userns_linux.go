//go:build linux

package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// reexecEnv marks a process that ReexecConfined started, so that it does
// not start another.
const reexecEnv = "INVENTORY_PRISM_USERNS"

// ReexecConfined makes StartPrism able to confine Prism's job server for a
// user other than root. A process of such a user may not create a network
// namespace; a process it starts in a user namespace of its own may, where
// the kernel allows unprivileged user namespaces (most Linux distributions
// do). ReexecConfined, when this process may not create one and such a
// start succeeds, runs this same command again that way, with the same
// arguments, environment and standard streams, passing SIGINT and SIGTERM on,
// and returns its exit code with ran true: the caller exits with it. The
// command runs as the same user on the same files (the namespace maps the
// user's ids to themselves) and in this machine's network; only its
// namespace's own network is new to it. In every other case it returns ran
// false and StartPrism does what it can.
//
// Call it first thing in a main that runs Prism in process: it starts the
// command over.
func ReexecConfined() (code int, ran bool, err error) {
	if os.Getenv(reexecEnv) != "" || canUnshareNet() {
		return 0, false, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, false, nil
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), reexecEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	uid, gid := os.Getuid(), os.Getgid()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		// Inside, the user keeps the capabilities to create a network
		// namespace and bring its loopback up, over that namespace only.
		AmbientCaps: []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN},
		Pdeathsig:   syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		// No user namespaces here: StartPrism says what that means.
		return 0, false, nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			switch {
			case err == nil:
				return 0, true, nil
			case errors.As(err, &ee) && ee.ExitCode() >= 0:
				return ee.ExitCode(), true, nil
			default:
				return 1, true, fmt.Errorf("launch: %s in a user namespace: %w", os.Args[0], err)
			}
		}
	}
}

// canUnshareNet reports whether this process may create a network
// namespace, by creating one on a thread that ends right after.
func canUnshareNet() bool {
	res := make(chan error, 1)
	lockedThread(func() { res <- unix.Unshare(unix.CLONE_NEWNET) })
	return <-res == nil
}
