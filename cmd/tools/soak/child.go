package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// upChild is `inventory up` as a child process.
type upChild struct {
	cmd    *exec.Cmd
	pubsub string
	debug  string // the pprof base URL
	exited chan error
}

// startUp starts `bin up args...` in its own process group (a Ctrl-C at the
// terminal reaches only soak, which stops it in order), logging to
// dir/up.log, and waits until it says it is ready.
func startUp(bin, dir string, args ...string) (*upChild, error) {
	logf, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"up"}, args...)...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start inventory up: %w", err)
	}
	c := &upChild{cmd: cmd, exited: make(chan error, 1)}
	ready := make(chan struct{})
	go func(ready chan struct{}) {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			fmt.Fprintln(logf, l)
			if ready == nil {
				continue
			}
			switch f := strings.Fields(l); {
			case len(f) > 1 && f[0] == "pubsub":
				c.pubsub = f[1]
			case len(f) > 1 && f[0] == "debug":
				c.debug = f[1]
			case l == "ready; Ctrl-C stops":
				close(ready)
				ready = nil
			}
		}
		c.exited <- cmd.Wait()
		logf.Close()
	}(ready)
	select {
	case <-ready:
	case err := <-c.exited:
		return nil, fmt.Errorf("inventory up exited before it was ready (%v); see %s", err, logf.Name())
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("inventory up not ready in 5 minutes; see %s", logf.Name())
	}
	if c.pubsub == "" || c.debug == "" {
		return nil, fmt.Errorf("inventory up did not print its pubsub and debug addresses; see %s", logf.Name())
	}
	return c, nil
}

// interrupt sends SIGINT and waits for a clean exit.
func (c *upChild) interrupt(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		return err
	}
	select {
	case err := <-c.exited:
		c.exited <- err
		return err
	case <-time.After(timeout):
		c.cmd.Process.Kill()
		return fmt.Errorf("not stopped %s after SIGINT: killed", timeout)
	}
}

// kill ends the child if it still runs.
func (c *upChild) kill() {
	select {
	case err := <-c.exited:
		c.exited <- err
	default:
		c.cmd.Process.Kill()
	}
}
