package docs

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// capacityInput is one row of docs/capacity.md's table of inputs taken from
// a benchmark CSV: `| name | value | `file.csv` col=val ... column |`.
var capacityInput = regexp.MustCompile("^\\|\\s*([^|]+?)\\s*\\|\\s*([0-9.,]+)\\s*\\|\\s*`([^`]+\\.csv)`\\s+([^|]*?)\\s*\\|")

// TestCapacityInputs checks that every input of the capacity model that
// names a benchmark CSV has the value of that CSV's last matching row, so
// that the model is re-derived when the benchmarks are re-run.
func TestCapacityInputs(t *testing.T) {
	b, err := os.ReadFile("capacity.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		m := capacityInput.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		name, value, file, spec := m[1], m[2], m[3], strings.Fields(m[4])
		if len(spec) == 0 {
			t.Errorf("capacity.md input %q: no column named after %s", name, file)
			continue
		}
		col, filters := spec[len(spec)-1], spec[:len(spec)-1]
		got, err := lastCSVValue(filepath.Join(".", file), filters, col)
		if err != nil {
			t.Errorf("capacity.md input %q: %v", name, err)
			continue
		}
		want, _ := strconv.ParseFloat(strings.ReplaceAll(value, ",", ""), 64)
		if got != want {
			t.Errorf("capacity.md input %q is %s, but the last run in %s says %v (%s %s): re-derive the model", name, value, file, got, strings.Join(filters, " "), col)
		}
	}
	if n < 4 {
		t.Errorf("capacity.md has %d inputs read from benchmark CSVs, want at least 4", n)
	}
}

// lastCSVValue returns column col of the last row of file whose columns
// match filters (col=value each).
func lastCSVValue(file string, filters []string, col string) (float64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return 0, fmt.Errorf("%s: %v (%d rows)", file, err, len(rows))
	}
	idx := map[string]int{}
	for i, h := range rows[0] {
		idx[h] = i
	}
	ci, ok := idx[col]
	if !ok {
		return 0, fmt.Errorf("%s has no column %q", file, col)
	}
	found := ""
	for _, r := range rows[1:] {
		match := true
		for _, fl := range filters {
			k, v, _ := strings.Cut(fl, "=")
			if i, ok := idx[k]; !ok || r[i] != v {
				match = false
				break
			}
		}
		if match {
			found = r[ci]
		}
	}
	if found == "" {
		return 0, fmt.Errorf("%s: no row with %v", file, filters)
	}
	return strconv.ParseFloat(found, 64)
}
