package launch_test

import (
	"flag"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/pipelines/launch"
)

func TestIsDataflow(t *testing.T) {
	for r, want := range map[string]bool{
		"dataflow": true, "DataflowRunner": true, "Dataflow": true, "DATAFLOW": true, "dataflowrunner": true, " dataflow ": true,
		"": false, "prism": false, "direct": false, "dataflowx": false, "universal": false,
	} {
		if got := launch.IsDataflow(r); got != want {
			t.Errorf("IsDataflow(%q) = %v, want %v", r, got, want)
		}
	}
}

func build(kv ...string) *debug.BuildInfo {
	info := &debug.BuildInfo{}
	for i := 0; i < len(kv); i += 2 {
		info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
	}
	return info
}

func TestWorkerBinary(t *testing.T) {
	static := build("-trimpath", "true", "CGO_ENABLED", "0", "GOARCH", "amd64", "GOOS", "linux")
	if got, err := launch.WorkerBinary(static, "/bin/stream"); err != nil || got != "/bin/stream" {
		t.Fatalf("static linux/amd64: %q, %v", got, err)
	}
	for name, c := range map[string]struct {
		info *debug.BuildInfo
		want string
	}{
		"cgo":          {build("CGO_ENABLED", "1", "GOARCH", "amd64", "GOOS", "linux"), `CGO_ENABLED="1"`},
		"darwin":       {build("CGO_ENABLED", "0", "GOARCH", "arm64", "GOOS", "darwin"), `GOOS="darwin"`},
		"arm64":        {build("CGO_ENABLED", "0", "GOARCH", "arm64", "GOOS", "linux"), `GOARCH="arm64"`},
		"no settings":  {build(), `CGO_ENABLED=""`},
		"no buildinfo": {nil, "no build information"},
	} {
		_, err := launch.WorkerBinary(c.info, "/bin/stream")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "CGO_ENABLED=0 GOOS=linux GOARCH=amd64") ||
			!strings.Contains(err.Error(), "--worker_binary") {
			t.Errorf("%s: error %v, want one naming %s with the hint", name, err, c.want)
		}
	}
}

func flags(args ...string) *flag.FlagSet {
	fs := flag.NewFlagSet("job", flag.ContinueOnError)
	fs.String("runner", "", "")
	fs.String("worker_binary", "", "")
	fs.Bool("dry_run", false, "")
	if err := fs.Parse(args); err != nil {
		panic(err)
	}
	return fs
}

func TestPrepare(t *testing.T) {
	// Not Dataflow: untouched.
	fs := flags("--runner=prism")
	if df, err := launch.Prepare(fs); df || err != nil || fs.Lookup("worker_binary").Value.String() != "" {
		t.Errorf("prism: dataflow=%v err=%v worker=%q", df, err, fs.Lookup("worker_binary").Value)
	}
	// An explicit --worker_binary wins, and the runner is normalized.
	fs = flags("--runner=DataflowRunner", "--worker_binary=/x/worker")
	if df, err := launch.Prepare(fs); !df || err != nil {
		t.Fatalf("explicit: dataflow=%v err=%v", df, err)
	}
	if r, w := fs.Lookup("runner").Value.String(), fs.Lookup("worker_binary").Value.String(); r != "dataflow" || w != "/x/worker" {
		t.Errorf("explicit: runner=%q worker=%q", r, w)
	}
	// A dry run stages nothing: no worker needed.
	fs = flags("--runner=dataflow", "--dry_run")
	if df, err := launch.Prepare(fs); !df || err != nil || fs.Lookup("worker_binary").Value.String() != "" {
		t.Errorf("dry run: dataflow=%v err=%v worker=%q", df, err, fs.Lookup("worker_binary").Value)
	}
	// Otherwise the test binary itself is the candidate: accepted exactly
	// when it is a static linux/amd64 build.
	info, _ := debug.ReadBuildInfo()
	_, wantErr := launch.WorkerBinary(info, "self")
	fs = flags("--runner=Dataflow")
	df, err := launch.Prepare(fs)
	if !df || (err != nil) != (wantErr != nil) {
		t.Fatalf("self: dataflow=%v err=%v, want error %v", df, err, wantErr)
	}
	if err == nil && fs.Lookup("worker_binary").Value.String() == "" {
		t.Error("self: --worker_binary not set")
	}
}
