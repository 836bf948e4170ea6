package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Always are the module paths govulncheck uses for the Go distribution; they
// are kept whatever the module list says.
var Always = []string{"stdlib", "toolchain"}

// Stats says what Build did.
type Stats struct {
	Read    int // OSV entries read
	Kept    int // entries written
	Modules int // modules in the index
}

type entry struct {
	ID       string     `json:"id"`
	Modified time.Time  `json:"modified"`
	Affected []affected `json:"affected"`
}

type affected struct {
	Package struct {
		Name string `json:"name"` // module path, or stdlib or toolchain
	} `json:"package"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// Build reads every <id>.json in osvDir and writes the database to outDir,
// replacing a database already there. keep says which modules matter; an
// entry is written when it affects at least one of them. A nil keep keeps
// every entry.
func Build(osvDir, outDir string, keep func(module string) bool) (Stats, error) {
	var st Stats
	files, err := os.ReadDir(osvDir)
	if err != nil {
		return st, err
	}
	if err := checkReplaceable(outDir); err != nil {
		return st, err
	}
	tmp := outDir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return st, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "ID"), 0o755); err != nil {
		return st, err
	}
	if err := os.MkdirAll(filepath.Join(tmp, "index"), 0o755); err != nil {
		return st, err
	}

	var newest time.Time
	index := map[string]*moduleMeta{}
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || filepath.Ext(name) != ".json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(osvDir, name))
		if err != nil {
			return st, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return st, fmt.Errorf("%s: %w", name, err)
		}
		if e.ID == "" || name != e.ID+".json" {
			return st, fmt.Errorf("%s: entry id %q, want a file named <id>.json", name, e.ID)
		}
		st.Read++
		if keep != nil && !slices.ContainsFunc(e.Affected, func(a affected) bool { return keep(a.Package.Name) }) {
			continue
		}
		st.Kept++
		if e.Modified.After(newest) {
			newest = e.Modified
		}
		for _, a := range e.Affected {
			m := index[a.Package.Name]
			if m == nil {
				m = &moduleMeta{Path: a.Package.Name}
				index[a.Package.Name] = m
			}
			// An entry may name a module more than once (one range each).
			if !slices.ContainsFunc(m.Vulns, func(v moduleVuln) bool { return v.ID == e.ID }) {
				m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
			}
		}
		if err := os.WriteFile(filepath.Join(tmp, "ID", name), b, 0o644); err != nil {
			return st, err
		}
	}

	if st.Modules, err = writeIndex(tmp, index, newest); err != nil {
		return st, err
	}
	if err := os.RemoveAll(outDir); err != nil {
		return st, err
	}
	return st, os.Rename(tmp, outDir)
}

// writeIndex writes the database's index of dir: the modules with their
// vulnerabilities sorted, and the database's modification time. It returns
// the count of modules.
func writeIndex(dir string, index map[string]*moduleMeta, newest time.Time) (int, error) {
	modules := make([]*moduleMeta, 0, len(index))
	for _, m := range index {
		slices.SortFunc(m.Vulns, func(a, b moduleVuln) int { return strings.Compare(a.ID, b.ID) })
		modules = append(modules, m)
	}
	slices.SortFunc(modules, func(a, b *moduleMeta) int { return strings.Compare(a.Path, b.Path) })
	if err := writeJSON(filepath.Join(dir, "index", "modules.json"), modules); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(dir, "index", "db.json"), struct {
		Modified time.Time `json:"modified"`
	}{newest}); err != nil {
		return 0, err
	}
	return len(modules), nil
}

// checkReplaceable refuses to remove an outDir that is neither missing, empty
// nor a database, so a wrong -out cannot wipe an unrelated folder.
func checkReplaceable(outDir string) error {
	ents, err := os.ReadDir(outDir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(ents) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(outDir, "index", "modules.json")); err != nil {
		return fmt.Errorf("%s exists and is not a vulnerability database; not replacing it", outDir)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Keep returns a keep function for Build that accepts the given module paths
// and those in Always.
func Keep(modules []string) func(string) bool {
	set := map[string]bool{}
	for _, m := range append(modules, Always...) {
		set[m] = true
	}
	return func(m string) bool { return set[m] }
}

// ParseModules reads module paths, one a line, as `go list -m all` prints
// them ("path version", or "path version => replacement"): the first field
// of each line. Blank lines are skipped.
func ParseModules(text string) []string {
	var mods []string
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	return mods
}
