package localstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ClaimFile is the file in a directory of the local stack (the local
// Pub/Sub's data directory, the warehouse) whose lock says that one process
// uses it, and which holds that process's id.
const ClaimFile = ".inventory-lock"

// Claim is one process's exclusive use of a directory: on Unix a flock on
// <dir>/.inventory-lock, released by Release or, if the process dies, by
// the kernel. Two `inventory up` on one data directory would fight over the
// local Pub/Sub's file; two streams on one warehouse would store every
// event's effects twice over.
type Claim struct {
	Dir string
	f   *os.File
}

// claimOwner is what the claim file holds: who has the claim.
type claimOwner struct {
	PID    int       `json:"pid"`
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
}

// InUseError is the answer to a claim on a directory another process holds.
type InUseError struct {
	Dir  string
	What string // "data directory", "warehouse"
	// Holder (a command, "inventory up"), PID and Since are what the
	// holder wrote in the claim file; empty when it could not be read.
	Holder string
	PID    int
	Since  time.Time
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.Holder != "" {
		who = "another " + e.Holder
	}
	if e.PID > 0 {
		who += fmt.Sprintf(" (pid %d", e.PID)
		if !e.Since.IsZero() {
			who += ", since " + e.Since.Local().Format("15:04:05 MST")
		}
		who += ")"
	}
	return fmt.Sprintf("the %s %s is in use by %s", e.What, e.Dir, who)
}

// ClaimDir claims dir for this process, creating it if needed; what names
// the directory in errors, holder (a command, "inventory up") the claimant
// in the claim file. It fails at once with an *InUseError if another
// process holds the claim.
func ClaimDir(dir, what, holder string) (*Claim, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("claim %s %s: %w", what, dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ClaimFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("claim %s %s: %w", what, dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("claim %s %s: %w", what, dir, err)
	}
	if held {
		e := &InUseError{Dir: dir, What: what}
		var o claimOwner
		if b, err := os.ReadFile(f.Name()); err == nil && json.Unmarshal(b, &o) == nil {
			e.Holder, e.PID, e.Since = o.Holder, o.PID, o.Since
		}
		f.Close()
		return nil, e
	}
	b, _ := json.Marshal(claimOwner{PID: os.Getpid(), Holder: holder, Since: time.Now().UTC().Truncate(time.Second)})
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(b, '\n'), 0)
	}
	return &Claim{Dir: dir, f: f}, nil
}

// Release gives the claim up; a nil Claim or a second Release does nothing.
func (c *Claim) Release() error {
	if c == nil || c.f == nil {
		return nil
	}
	f := c.f
	c.f = nil
	unlock(f)
	return f.Close()
}
