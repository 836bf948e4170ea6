// Package launch prepares a Beam job's launch. On Dataflow: one spelling of
// the runner, and a worker binary the runner can stage as is. Locally, on
// Prism: a job server that only this machine can reach (StartPrism).
//
// Beam Go's Dataflow runner stages --worker_binary when it is given and
// otherwise cross-compiles the job for linux/amd64 with CGO_ENABLED=0 from
// the source tree it finds through the binary's build paths: a launch from a
// container or from outside the repository fails there, and so does any job
// that links cgo. A static linux/amd64 binary is its own worker, so Prepare
// passes the running executable instead.
package launch

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

// Dataflow is the runner name Prepare normalizes every Dataflow spelling to.
const Dataflow = "dataflow"

// IsDataflow reports whether runner names Beam's Dataflow runner: Beam
// registers "dataflow" and "DataflowRunner"; any case of either is accepted.
func IsDataflow(runner string) bool {
	r := strings.ToLower(strings.TrimSpace(runner))
	return r == "dataflow" || r == "dataflowrunner"
}

// hint says how to get a binary Dataflow can run.
const hint = "build with CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o BIN ./cmd/JOB and run BIN, or pass --worker_binary=PATH to such a build"

// WorkerBinary returns exe if the build described by info is one Dataflow's
// workers can run (CGO_ENABLED=0, GOOS=linux, GOARCH=amd64), and otherwise
// an error naming what differs, with hint.
func WorkerBinary(info *debug.BuildInfo, exe string) (string, error) {
	if info == nil {
		return "", fmt.Errorf("launch: no build information in %s: %s", exe, hint)
	}
	want := map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64"}
	got := map[string]string{}
	for _, s := range info.Settings {
		if _, ok := want[s.Key]; ok {
			got[s.Key] = s.Value
		}
	}
	var bad []string
	for _, k := range []string{"CGO_ENABLED", "GOOS", "GOARCH"} {
		if got[k] != want[k] {
			bad = append(bad, fmt.Sprintf("%s=%q (want %s)", k, got[k], want[k]))
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("launch: %s is not a Dataflow worker binary: %s; %s", exe, strings.Join(bad, ", "), hint)
	}
	return exe, nil
}

// Prepare readies the process's Beam flags for a launch. With a Dataflow
// runner it sets --runner to "dataflow" (Beam's registry is case-sensitive)
// and, unless --worker_binary was given explicitly, sets it to the running
// executable, or fails with hint when that is not a static linux/amd64
// build (not for --dry_run, which stages nothing). Other runners are left
// alone. Call it after flag.Parse.
func Prepare(fs *flag.FlagSet) (dataflow bool, err error) {
	r := fs.Lookup("runner")
	if r == nil || !IsDataflow(r.Value.String()) {
		return false, nil
	}
	if err := fs.Set("runner", Dataflow); err != nil {
		return true, fmt.Errorf("launch: set --runner: %w", err)
	}
	if fs.Lookup("worker_binary") == nil {
		return true, fmt.Errorf("launch: Beam's --worker_binary flag is not defined")
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "worker_binary" })
	if explicit {
		return true, nil
	}
	// A dry run translates the job without staging a worker.
	if d := fs.Lookup("dry_run"); d != nil && d.Value.String() == "true" {
		return true, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return true, fmt.Errorf("launch: find the running executable: %w; %s", err, hint)
	}
	info, _ := debug.ReadBuildInfo()
	bin, err := WorkerBinary(info, exe)
	if err != nil {
		return true, err
	}
	if err := fs.Set("worker_binary", bin); err != nil {
		return true, fmt.Errorf("launch: set --worker_binary: %w", err)
	}
	return true, nil
}
