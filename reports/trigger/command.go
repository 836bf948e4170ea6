package trigger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// CommandRunner returns a RunFunc that runs argv with dateFlag=DATE appended
// (e.g. bin/nightly --runner=prism ... --date=2026-11-24), passes its stderr
// through, and returns the last line it printed on stdout (the report
// location, say). Cancelling the run sends SIGTERM, then SIGKILL after 10 s.
func CommandRunner(argv []string, dateFlag string) RunFunc {
	return func(ctx context.Context, date string) (string, error) {
		if len(argv) == 0 {
			return "", errors.New("nightly command: empty command line")
		}
		args := append(append([]string(nil), argv[1:]...), dateFlag+"="+date)
		cmd := exec.CommandContext(ctx, argv[0], args...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		var out tailBuffer
		cmd.Stdout = &out
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("nightly command %s: %w", argv[0], err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return strings.TrimSpace(lines[len(lines)-1]), nil
	}
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ bytes.Buffer }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n, _ := t.Buffer.Write(p)
	if over := t.Len() - 4<<10; over > 0 {
		t.Next(over)
	}
	return n, nil
}
