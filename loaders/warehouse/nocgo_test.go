package warehouse_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
)

// TestDataflowBinariesBuildWithoutCgo builds the commands that run on
// Dataflow as Beam's Dataflow runner and the Dockerfiles build them: static,
// CGO_ENABLED=0, linux/amd64. Only the local warehouse's SQL engine
// (DuckDB) needs cgo; it must stay out of these builds. It then runs the
// local backend's tests without cgo, which check the error a query gets.
func TestDataflowBinariesBuildWithoutCgo(t *testing.T) {
	slowtest.Skip(t, "builds three binaries without cgo (minutes on a cold cache)")
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	run := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The flags of the Dockerfiles and make deploy-check, so that CI's
	// builds share one cache instead of compiling Beam twice.
	run([]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"},
		"build", "-trimpath", "-tags", "timetzdata", "-o", t.TempDir()+string(os.PathSeparator), "./cmd/stream", "./cmd/nightly", "./cmd/trigger")
	out := run([]string{"CGO_ENABLED=0"}, "test", "-count=1", "-v", "-run", "^TestQueryNeedsCgo$", "./loaders/warehouse/local")
	if !strings.Contains(out, "--- PASS: TestQueryNeedsCgo") {
		t.Errorf("the !cgo test of loaders/warehouse/local did not run:\n%s", out)
	}
}
