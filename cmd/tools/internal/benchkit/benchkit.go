// Package benchkit holds what the benchmark and soak tools of cmd/tools
// share: memory readings of a process, the local Pub/Sub in a child process,
// percentiles and heap profiles.
package benchkit

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PeakRSS returns this process's peak resident set (VmHWM) in MiB since it
// started or since the last ResetPeakRSS; 0 where /proc is missing.
func PeakRSS() float64 {
	mib, _ := statusMiB("self", "VmHWM:")
	return mib
}

// FileRSS returns the file-backed part of this process's resident set
// (RssFile) in MiB: for a Go binary, the pages of its own executable it
// has touched. It is part of PeakRSS and varies with how the binary's file
// was written rather than with the code: 129 MiB for streambench as the
// linker wrote it, 70 MiB for a copy of the same file
// (docs/benchmarks.md#peak-rss-and-the-binarys-pages).
func FileRSS() float64 {
	mib, _ := statusMiB("self", "RssFile:")
	return mib
}

// ResetPeakRSS starts PeakRSS over from the current resident set (Linux).
func ResetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// RSS returns the resident set (VmRSS) of process pid in MiB.
func RSS(pid int) (float64, error) {
	return statusMiB(strconv.Itoa(pid), "VmRSS:")
}

// statusMiB reads a "kB" field of /proc/<pid>/status in MiB.
func statusMiB(pid, field string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%s/status has no %s", pid, field)
}

// Percentile returns the p-th (0 to 1) of ds, sorting ds; 0 when empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}

// WriteHeapProfile writes the live heap, after a GC, to path.
func WriteHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}
