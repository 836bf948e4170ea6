package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
)

// TestGameSetsNoFlagOfItsOwn fails when the game's code passes a flag that
// the deploy files do not set. Every "--flag" literal in its non-test Go
// files must be a gcloud flag the template launcher maps
// (rehearse.LauncherFlags), the Beam flag it maps it to, one of
// rehearse.RehearsalFlags (the runner, which the game turns to Prism), or
// one of operatorFlags, each of which the runbook's own commands give
// (checked against deploy/README.md). The jobs' flags (--snapshot,
// --preflight, ...) come from deploy/stream-flags.yaml and the trigger's
// launch only.
func TestGameSetsNoFlagOfItsOwn(t *testing.T) {
	allowed := rehearse.AllowedFlags()
	runbook, err := os.ReadFile("../../../deploy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var commands []string // the runbook's `inventory` command lines
	for _, b := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(runbook), -1) {
		block := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(b[1], "")
		for _, l := range strings.Split(block, "\n") {
			if strings.Contains(l, "./cmd/inventory ") {
				commands = append(commands, l)
			}
		}
	}
	for _, f := range operatorFlags {
		if !slices.ContainsFunc(commands, func(c string) bool { return regexp.MustCompile(regexp.QuoteMeta(f) + `[ =]`).MatchString(c + " ") }) {
			t.Errorf("operatorFlags has %s, which no inventory command of the runbook gives", f)
		}
		allowed[f] = true
	}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(p string) bool { return strings.HasSuffix(p, "_test.go") })
	uses, err := rehearse.FlagLiterals(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uses {
		if !allowed[u.Name] {
			t.Errorf("%s: the game passes %s itself; a flag must come from the deploy files (deploy/stream-flags.yaml, deploy/cloudbuild.yaml) or the runbook's commands", u.Pos, u.Name)
		}
	}
	if len(uses) < 5 {
		t.Fatalf("found only %d flag literals in %v: is the scan looking at the right files?", len(uses), files)
	}
}

// TestPrismArgs: the adapter changes the runner and nothing else.
func TestPrismArgs(t *testing.T) {
	in := []string{"--runner=dataflow", "--job_name=j", "--warehouse=bq://p.d", "--no_use_public_ips"}
	got := prismArgs(in)
	want := []string{"--runner=prism", "--job_name=j", "--warehouse=bq://p.d", "--no_use_public_ips"}
	if !slices.Equal(got, want) || in[0] != "--runner=dataflow" {
		t.Errorf("prismArgs(%v) = %v, want %v (and the input unchanged)", in, got, want)
	}
}
