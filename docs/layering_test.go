package docs

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The Layout's layering rules, checked on the import lines of every Go file:
// the domain core imports nothing of the application or of the layers above
// it; the application (internal/app) is imported by cmd/ alone; no deployed
// binary links a test tool (internal/testkit) or a local emulator
// (internal/emulator); every main is under cmd/, and cmd/ holds nothing
// else but the binaries' own internal/ packages.

// domainCore is the domain core: the event contract in Go and the ledger rules.
var domainCore = []string{"internal/event", "internal/ledger", "internal/codec", "internal/names", "internal/clock", "internal/registry"}

// aboveCore are the folders the domain core may not import, in its code or its tests.
var aboveCore = []string{"internal/app", "loaders", "pipelines", "transforms", "reports", "cmd"}

// deployed are the binaries that run in production.
var deployed = []string{"cmd/stream", "cmd/nightly", "cmd/trigger"}

// localOnly are the folders no deployed binary links: the test tools, and
// the local stand-ins the CLI ships for running everything on one machine.
var localOnly = []string{"internal/testkit", "internal/emulator"}

// goPackage is one folder's Go files, as far as layering goes.
type goPackage struct {
	main        bool            // a non-test file says package main
	imports     map[string]bool // module-relative folders its non-test files import
	testImports map[string]bool // module-relative folders its _test files import
}

// goPackages parses the import lines of every Go file in the repository,
// outside testdata and hidden folders, keyed by module-relative folder.
func goPackages(t *testing.T) map[string]*goPackage {
	t.Helper()
	mod := modulePath(t)
	pkgs := map[string]*goPackage{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(rel)
		pkg := pkgs[dir]
		if pkg == nil {
			pkg = &goPackage{imports: map[string]bool{}, testImports: map[string]bool{}}
			pkgs[dir] = pkg
		}
		test := strings.HasSuffix(p, "_test.go")
		if !test && f.Name.Name == "main" {
			pkg.main = true
		}
		for _, imp := range f.Imports {
			ip, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			rest, ok := strings.CutPrefix(ip, mod+"/")
			if !ok {
				continue
			}
			if test {
				pkg.testImports[rest] = true
			} else {
				pkg.imports[rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func modulePath(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), "module "); ok {
			return strings.TrimSpace(m)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// under reports whether folder dir is one of folders or inside one.
func under(dir string, folders ...string) bool {
	return slices.ContainsFunc(folders, func(f string) bool { return dir == f || strings.HasPrefix(dir, f+"/") })
}

func TestDomainCoreImportsNothingAbove(t *testing.T) {
	pkgs := goPackages(t)
	for _, core := range domainCore {
		pkg := pkgs[core]
		if pkg == nil {
			t.Errorf("%s: no Go package there; update domainCore with the Layout", core)
			continue
		}
		for imp := range pkg.imports {
			if !under(imp, domainCore...) && !under(imp, "proto") {
				t.Errorf("%s imports %s: the domain core imports only itself and proto/", core, imp)
			}
		}
		for imp := range pkg.testImports {
			if under(imp, aboveCore...) {
				t.Errorf("%s's tests import %s: the domain core's tests may use internal/testkit, not the layers above", core, imp)
			}
		}
	}
}

func TestApplicationSitsAboveEverything(t *testing.T) {
	for dir, pkg := range goPackages(t) {
		if under(dir, "cmd", "internal/app") {
			continue
		}
		for imp := range pkg.imports {
			if under(imp, "internal/app") {
				t.Errorf("%s imports %s: only cmd/ imports the application", dir, imp)
			}
		}
		for imp := range pkg.testImports {
			if under(imp, "internal/app") {
				t.Errorf("%s's tests import %s: only cmd/ imports the application", dir, imp)
			}
		}
	}
}

func TestDeployedBinariesLinkNothingLocal(t *testing.T) {
	pkgs := goPackages(t)
	for _, bin := range deployed {
		if pkgs[bin] == nil || !pkgs[bin].main {
			t.Errorf("%s: no main package there; update deployed", bin)
			continue
		}
		// Walk the module's packages the binary links, remembering who
		// pulled each in, to name the path in a failure.
		from := map[string]string{bin: ""}
		queue := []string{bin}
		for len(queue) > 0 {
			dir := queue[0]
			queue = queue[1:]
			if under(dir, localOnly...) {
				chain := []string{dir}
				for p := from[dir]; p != ""; p = from[p] {
					chain = append(chain, p)
				}
				slices.Reverse(chain)
				t.Errorf("%s links %s, which is for local use only: %s", bin, dir, strings.Join(chain, " -> "))
				continue
			}
			pkg := pkgs[dir]
			if pkg == nil {
				continue
			}
			for _, imp := range slices.Sorted(maps.Keys(pkg.imports)) {
				if _, seen := from[imp]; !seen {
					from[imp] = dir
					queue = append(queue, imp)
				}
			}
		}
	}
}

func TestEveryMainUnderCmd(t *testing.T) {
	for dir, pkg := range goPackages(t) {
		if pkg.main && !under(dir, "cmd") {
			t.Errorf("%s is a main package outside cmd/: move it to cmd/ (tools to cmd/tools/)", dir)
		}
		if !pkg.main && under(dir, "cmd") && !slices.Contains(strings.Split(dir, "/"), "internal") {
			t.Errorf("%s is under cmd/ but is not a main package: cmd/ holds binaries, and what they share under an internal/ folder", dir)
		}
	}
}

// layerRank orders the Layout's layers from the top: a package may import
// its own layer or one ranked lower, never one ranked higher (a climb back
// up). Following the streaming job's configuration from cmd/stream through
// stream.Build to the transforms and loaders it configures thus only goes
// down. The first matching prefix wins.
var layerRank = []struct {
	prefix string
	rank   int
}{
	{"cmd", 7},
	{"internal/app", 6},
	{"pipelines", 5},
	{"transforms", 4},
	{"internal/testkit", 3},
	{"reports", 2},
	{"loaders", 2},
	{"internal", 1}, // the domain core
	{"proto", 0},
}

func rankOf(dir string) (int, bool) {
	for _, l := range layerRank {
		if under(dir, l.prefix) {
			return l.rank, true
		}
	}
	return 0, false
}

func TestImportsGoDown(t *testing.T) {
	for dir, pkg := range goPackages(t) {
		from, ok := rankOf(dir)
		if !ok {
			continue // docs, deploy: tests only
		}
		for imp := range pkg.imports {
			if to, ok := rankOf(imp); ok && to > from {
				t.Errorf("%s imports %s, a layer above it (layerRank)", dir, imp)
			}
		}
	}
}
