package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/app/localstack"
)

// demoWrites stands for a demo run: it claims the directories, writes a
// file into each as the stream and the nightly job would, and finishes.
func demoWrites(t *testing.T, wh, reports string) {
	t.Helper()
	d, err := claimDemoDirs(wh, reports)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(wh, "adjustments", "dt=2026-11-24", "part-1.parquet"), "demo rows")
	write(t, filepath.Join(reports, "2026-11-24", "index.html"), "demo report")
	if err := d.finish(); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDemoReplacesOnlyItsOwnRun: the demo replaces a warehouse and a
// reports directory that hold its last run and nothing since, also after
// reads; it refuses one that `inventory up` wrote into or uses, one without
// its record, and one whose run did not finish, naming the directory and
// the commands to run instead, and leaves it as it was.
func TestDemoReplacesOnlyItsOwnRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, wh, reports string) // after a demo run
		refused string                                 // the directory refused, "" if none
		why     string
	}{
		{"its own run", func(*testing.T, string, string) {}, "", ""},
		{"its own run, read since", func(t *testing.T, wh, _ string) {
			// What inventory sql and the tally do: read, write nothing.
			if _, _, _, err := dirPrint(wh); err != nil {
				t.Fatal(err)
			}
		}, "", ""},
		{"up stored rows since", func(t *testing.T, wh, _ string) {
			write(t, filepath.Join(wh, "threshold_changes", "dt=2026-12-01", "part-9.parquet"), "up's rows")
		}, "warehouse", "changed since the demo of"},
		{"a file rewritten in place", func(t *testing.T, wh, _ string) {
			write(t, filepath.Join(wh, "adjustments", "dt=2026-11-24", "part-1.parquet"), "DEMO ROWS")
		}, "warehouse", "changed since the demo of"},
		{"a report of up's nightly run", func(t *testing.T, _, reports string) {
			write(t, filepath.Join(reports, "2026-12-01", "index.html"), "up's report")
		}, "reports", "changed since the demo of"},
		{"no record", func(t *testing.T, wh, _ string) {
			os.Remove(filepath.Join(wh, demoMarker))
		}, "warehouse", "no record (.inventory-demo)"},
		{"an older demo's record", func(t *testing.T, wh, _ string) {
			write(t, filepath.Join(wh, demoMarker), "made by `inventory demo`; the next demo replaces this directory\n")
		}, "warehouse", "an older demo"},
		{"a run that did not finish", func(t *testing.T, wh, reports string) {
			d, err := claimDemoDirs(wh, reports)
			if err != nil {
				t.Fatal(err)
			}
			d.claim.Release() // killed: never finished, its claim released by the kernel
			write(t, filepath.Join(wh, "adjustments", "dt=2026-11-24", "part-2.parquet"), "rows")
		}, "warehouse", "did not finish"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			wh, reports := filepath.Join(dir, "warehouse"), filepath.Join(dir, "reports-out")
			demoWrites(t, wh, reports)
			tc.prepare(t, wh, reports)
			before := map[string]string{}
			for _, d := range []string{wh, reports} {
				_, _, before[d], _ = dirPrint(d)
			}
			d, err := claimDemoDirs(wh, reports)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused its own run: %v", err)
				}
				defer d.claim.Release()
				for _, d := range []string{wh, reports} {
					if files, _, _, _ := dirPrint(d); files != 0 {
						t.Errorf("%s not cleared: %d files", d, files)
					}
				}
				return
			}
			if err == nil {
				d.claim.Release()
				t.Fatalf("replaced a %s that %s", tc.refused, tc.name)
			}
			path := map[string]string{"warehouse": wh, "reports": reports}[tc.refused]
			msg := err.Error()
			for _, want := range []string{tc.refused + " " + path + " ", tc.why, "demo --warehouse " + filepath.Join(dir, "demo-warehouse") +
				" --reports " + filepath.Join(dir, "demo-reports-out")} {
				if !strings.Contains(msg, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, msg)
				}
			}
			if !strings.HasSuffix(msg, "\n  rm -rf "+path) {
				t.Errorf("the refusal does not end with the command that removes %s alone:\n%s", path, msg)
			}
			for _, d := range []string{wh, reports} {
				if _, _, after, _ := dirPrint(d); after != before[d] {
					t.Errorf("a refused demo changed %s", d)
				}
			}
			// The claim is released: inventory up may start on it.
			c, err := localstack.ClaimDir(wh, "warehouse", "inventory up")
			if err != nil {
				t.Fatalf("a refused demo kept its claim: %v", err)
			}
			c.Release()
		})
	}
}

// TestDemoRefusesAWarehouseInUse: while `inventory up` holds the warehouse,
// the demo is refused with up's pid, whatever the warehouse holds.
func TestDemoRefusesAWarehouseInUse(t *testing.T) {
	dir := t.TempDir()
	wh, reports := filepath.Join(dir, "warehouse"), filepath.Join(dir, "reports-out")
	demoWrites(t, wh, reports)
	up, err := localstack.ClaimDir(wh, "warehouse", "inventory up")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Release()
	_, err = claimDemoDirs(wh, reports)
	want := fmt.Sprintf("the warehouse %s is in use by another inventory up (pid %d, since ", wh, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "demo --warehouse ") {
		t.Fatalf("demo beside a running up: %v; want %q and the command to run instead", err, want)
	}
	if files, _, _, _ := dirPrint(wh); files != 1 {
		t.Fatalf("the refused demo changed the warehouse: %d files", files)
	}
	up.Release()
	d, err := claimDemoDirs(wh, reports)
	if err != nil {
		t.Fatalf("after up stopped without writing: %v", err)
	}
	d.claim.Release()
}

func TestCommandFor(t *testing.T) {
	for _, tc := range []struct{ arg0, want string }{
		{"bin/inventory", "bin/inventory"},
		{"inventory", "inventory"},
		{"/usr/local/bin/inventory", "/usr/local/bin/inventory"},
		{"/tmp/go-build123/b001/exe/inventory", "go run ./cmd/inventory"},
		{"/scratch/tmp/inventory", "go run ./cmd/inventory"},
		{"/opt/my tools/inventory", "'/opt/my tools/inventory'"},
	} {
		if got := commandFor(tc.arg0, "/scratch/tmp"); got != tc.want {
			t.Errorf("commandFor(%q) = %q, want %q", tc.arg0, got, tc.want)
		}
	}
}

func TestDemoElsewhere(t *testing.T) {
	for _, tc := range []struct{ wh, reports, want string }{
		{"./warehouse", "./reports-out", "demo --warehouse ./demo-warehouse --reports ./demo-reports-out"},
		{"warehouse/", "reports-out", "demo --warehouse ./demo-warehouse --reports ./demo-reports-out"},
		{"/data/wh", "/data/my reports", "demo --warehouse /data/demo-wh --reports '/data/demo-my reports'"},
	} {
		if got := demoElsewhere(tc.wh, tc.reports); !strings.HasSuffix(got, tc.want) {
			t.Errorf("demoElsewhere(%q, %q) = %q, want ... %q", tc.wh, tc.reports, got, tc.want)
		}
	}
}
