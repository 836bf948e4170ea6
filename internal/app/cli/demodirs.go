package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/inventory-events/inventory/internal/app/localstack"
)

// demoMarker is the demo's record in each directory it writes (the
// warehouse, the reports): when it ran and what it left there, so that the
// next demo replaces the directory only if nothing else wrote into it since.
// `inventory up` writes into the same default directories; a record that
// no longer matches the files keeps its data from being wiped.
const demoMarker = ".inventory-demo"

// demoRecord is the content of a demoMarker file.
type demoRecord struct {
	Note    string    `json:"note"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Finished is zero while the run goes on, or if it was killed.
	Finished time.Time `json:"finished"`
	// The directory's content when the run ended: every file but the
	// record and the claim file (dirPrint).
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// demoDirs are the directories one demo run writes: the warehouse, which it
// claims for the run as `inventory up` does, and the reports.
type demoDirs struct {
	warehouse, reports string
	claim              *localstack.Claim
	started            time.Time
}

// claimDemoDirs claims the warehouse and makes both directories the run's:
// each must be missing, empty, or hold the last demo's run and nothing
// since; otherwise it refuses, naming each directory and what to run
// instead, and touches nothing. Then it clears them and records a run in
// progress. finish records what the run left.
func claimDemoDirs(warehouse, reports string) (*demoDirs, error) {
	claim, err := localstack.ClaimDir(warehouse, "warehouse", "inventory demo")
	if err != nil {
		var inUse *localstack.InUseError
		if errors.As(err, &inUse) {
			return nil, fmt.Errorf("demo: %w; the demo never writes into a warehouse a stream is using. Run it elsewhere:\n  %s",
				err, demoElsewhere(warehouse, reports))
		}
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &demoDirs{warehouse: warehouse, reports: reports, claim: claim, started: time.Now().UTC()}
	var refused, paths []string
	for _, dir := range []struct{ what, path string }{{"warehouse", warehouse}, {"reports", reports}} {
		if why, err := notReplaceable(dir.path); err != nil {
			claim.Release()
			return nil, fmt.Errorf("demo: %s %s: %w", dir.what, dir.path, err)
		} else if why != "" {
			refused = append(refused, fmt.Sprintf("  %s %s %s", dir.what, dir.path, why))
			paths = append(paths, dir.path)
		}
	}
	if len(refused) > 0 {
		claim.Release()
		return nil, fmt.Errorf("demo: will not replace what the demo did not write:\n%s\n"+
			"The demo replaces a directory only when it holds nothing but the demo's own last run. Run it elsewhere:\n  %s\n"+
			"or, if you no longer need that data, remove it by hand:\n  rm -rf %s",
			strings.Join(refused, "\n"), demoElsewhere(warehouse, reports), shellQuote(paths...))
	}
	for _, dir := range []string{warehouse, reports} {
		if err := clearDir(dir); err != nil {
			claim.Release()
			return nil, fmt.Errorf("demo: clear %s: %w", dir, err)
		}
		if err := writeDemoRecord(dir, demoRecord{PID: os.Getpid(), Started: d.started}); err != nil {
			claim.Release()
			return nil, err
		}
	}
	return d, nil
}

// finish records what the run left in each directory, so that the next
// demo may replace it, and releases the warehouse. Call it once the stack
// has stopped, whether the run succeeded or not: everything in the
// directories is then the demo's.
func (d *demoDirs) finish() error {
	defer d.claim.Release()
	for _, dir := range []string{d.warehouse, d.reports} {
		files, size, sum, err := dirPrint(dir)
		if err != nil {
			return fmt.Errorf("demo: record %s: %w", dir, err)
		}
		rec := demoRecord{PID: os.Getpid(), Started: d.started, Finished: time.Now().UTC(), Files: files, Bytes: size, SHA256: sum}
		if err := writeDemoRecord(dir, rec); err != nil {
			return err
		}
	}
	return nil
}

// notReplaceable says why the demo may not replace dir ("" if it may): it
// may when dir is missing or empty, or holds a finished demo's record that
// matches every file in it.
func notReplaceable(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !hasFiles(ents) {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(dir, demoMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return "holds data, and no record (" + demoMarker + ") of a demo run", nil
	}
	if err != nil {
		return "", err
	}
	var rec demoRecord
	if json.Unmarshal(b, &rec) != nil || rec.Started.IsZero() {
		return "has the record of an older demo, which did not note what it wrote, so what else wrote into it since is unknown", nil
	}
	when := rec.Started.Local().Format("2006-01-02 15:04:05 MST")
	if rec.Finished.IsZero() {
		return fmt.Sprintf("holds a demo run (pid %d, started %s) that did not finish, so what else wrote into it since is unknown", rec.PID, when), nil
	}
	files, size, sum, err := dirPrint(dir)
	if err != nil {
		return "", err
	}
	if files != rec.Files || size != rec.Bytes || sum != rec.SHA256 {
		return fmt.Sprintf("changed since the demo of %s wrote it (%d files, %d bytes then; %d files, %d bytes now): "+
			"something else wrote into it (inventory up, a nightly run, inventory compact, ...)", when, rec.Files, rec.Bytes, files, size), nil
	}
	return "", nil
}

// hasFiles reports whether ents hold anything but the demo's record and
// the claim file.
func hasFiles(ents []fs.DirEntry) bool {
	for _, e := range ents {
		if e.Name() != demoMarker && e.Name() != localstack.ClaimFile {
			return true
		}
	}
	return false
}

// dirPrint returns the number of files under dir, their bytes, and a
// SHA-256 over each one's path, size and content, in path order; the
// demo's record and the claim file at the top are left out. A missing dir
// has none.
func dirPrint(dir string) (files int, size int64, sum string, err error) {
	h := sha256.New()
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipAll
		}
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == demoMarker || rel == localstack.ClaimFile {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		files++
		size += info.Size()
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00", filepath.ToSlash(rel), info.Size(), info.Mode().Type())
		if info.Mode().Type() == fs.ModeSymlink {
			target, err := os.Readlink(p)
			fmt.Fprintf(h, "%s\x00", target)
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	return files, size, hex.EncodeToString(h.Sum(nil)), err
}

// clearDir removes everything in dir but the claim file, creating dir if
// it is missing.
func clearDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == localstack.ClaimFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// writeDemoRecord writes rec as dir's demo record, atomically.
func writeDemoRecord(dir string, rec demoRecord) error {
	rec.Note = "written by `inventory demo`: the next demo replaces this directory only if it still holds just this run"
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: record %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, demoMarker+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("demo: record %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, demoMarker)); err != nil {
		return fmt.Errorf("demo: record %s: %w", dir, err)
	}
	return nil
}

// demoElsewhere is the command that runs the demo beside warehouse and
// reports, in directories of its own.
func demoElsewhere(warehouse, reports string) string {
	beside := func(dir string) string {
		p := filepath.Join(filepath.Dir(filepath.Clean(dir)), "demo-"+filepath.Base(filepath.Clean(dir)))
		if !strings.ContainsRune(p, filepath.Separator) {
			p = "." + string(filepath.Separator) + p // ./demo-warehouse: a directory, plainly
		}
		return p
	}
	return fmt.Sprintf("%s demo --warehouse %s --reports %s", selfCommand(), shellQuote(beside(warehouse)), shellQuote(beside(reports)))
}

// shellQuote joins paths for a shell command line, quoting those that need
// it.
func shellQuote(paths ...string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = p
		if p == "" || strings.ContainsFunc(p, func(r rune) bool { return !strings.ContainsRune("/._-+=:,@%", r) && !isAlnum(r) }) {
			q[i] = "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// selfCommand is how to run this program again, for the hints it prints.
func selfCommand() string { return commandFor(os.Args[0], os.TempDir()) }

// commandFor is the command that runs the program started as arg0: arg0
// itself (bin/inventory, or inventory found on the PATH), unless `go run`
// or `go test` built it into a temporary directory under tmp: then
// `go run ./cmd/inventory`.
func commandFor(arg0, tmp string) string {
	if strings.Contains(arg0, "go-build") || (tmp != "" && strings.HasPrefix(arg0, filepath.Clean(tmp)+string(filepath.Separator))) {
		return "go run ./cmd/inventory"
	}
	return shellQuote(arg0)
}
