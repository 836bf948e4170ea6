package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
)

// TestRehearsalSetsNoFlagOfItsOwn fails when the rehearsal's code passes a
// job flag that the deploy files do not set: every "--flag" literal in the
// non-test Go files of deploycheck and internal/testkit/rehearse must be a
// gcloud flag the launcher maps (launcherFlags), the Beam flag it maps it
// to, or one of the few rehearsalFlags. Job flags such as --snapshot or
// --preflight come from deploy/stream-flags.yaml and the trigger's launch
// only.
func TestRehearsalSetsNoFlagOfItsOwn(t *testing.T) {
	allowed := rehearse.AllowedFlags()
	var files []string
	for _, dir := range []string{".", "../../../internal/testkit/rehearse"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, slices.DeleteFunc(m, func(p string) bool { return strings.HasSuffix(p, "_test.go") })...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	uses, err := rehearse.FlagLiterals(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uses {
		if !allowed[u.Name] {
			t.Errorf("%s: the rehearsal passes %s itself; a job flag must come from the deploy files (deploy/stream-flags.yaml, deploy/cloudbuild.yaml)", u.Pos, u.Name)
		}
	}
	if len(uses) < 3 {
		t.Fatalf("found only %d flag literals: is the scan looking at the right files?", len(uses))
	}
}

func TestLauncherArgs(t *testing.T) {
	g, err := rehearse.ReadStreamFlags("../../..", streamFlagVars)
	if err != nil {
		t.Fatal(err)
	}
	args, err := rehearse.LauncherArgs(streamJob, g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--runner=dataflow", "--job_name=inventory-stream", "--no_use_public_ips",
		"--threshold_subscription=projects/deploycheck/subscriptions/threshold-updates-sub",
		"--service_account_email=inventory-stream@deploycheck.iam.gserviceaccount.com"} {
		if !slices.Contains(args, want) {
			t.Errorf("launcher args lack %s: %v", want, args)
		}
	}
	for _, a := range args {
		if strings.Contains(a, "${") || strings.Contains(a, "template-file") {
			t.Errorf("launcher arg %q", a)
		}
	}
	// A gcloud flag with no Beam Go flag behind it is refused.
	g["--enable-streaming-engine"] = nil
	if _, err := rehearse.LauncherArgs(streamJob, g); err == nil || !strings.Contains(err.Error(), "--enable-streaming-engine") {
		t.Errorf("--enable-streaming-engine: %v, want an error naming it", err)
	}
}
