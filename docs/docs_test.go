package docs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// root is the repository root, seen from this package's directory.
const root = ".."

// maxReadmeLines is the README's budget: what a newcomer needs, the rest in docs/.
const maxReadmeLines = 200

func TestReadmeLength(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, want at most %d: move detail into docs/", n, maxReadmeLines)
	}
}

// TestReadmeQuickStart: the quick start keeps its two commands, first in the README.
func TestReadmeQuickStart(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "```sh\nmake demo   # run the whole system locally on the sample data, end to end, then stop\nmake test   # run every test\n```\n"
	i := bytes.Index(b, []byte(want))
	if i < 0 {
		t.Fatalf("README.md lacks the quick start block:\n%s", want)
	}
	if first := bytes.Index(b, []byte("```")); first != i {
		t.Errorf("the quick start is not the README's first code block")
	}
}

// TestLayoutListsEveryFolder keeps the README's Layout section true: one
// line per folder, naming every top-level folder and every Go package's
// folder, and only folders that exist.
func TestLayoutListsEveryFolder(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no \"## Layout\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	for _, m := range layoutLine.FindAllStringSubmatch(section, -1) {
		dir := strings.TrimSuffix(m[1], "/")
		if listed[dir] {
			t.Errorf("Layout lists %s twice", dir)
		}
		listed[dir] = true
		if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir))); err != nil || !fi.IsDir() {
			t.Errorf("Layout lists %s, which is not a folder of the repository", dir)
		}
	}
	want := map[string]bool{}
	for _, f := range trackedFiles(t) {
		top, _, nested := strings.Cut(f, "/")
		if !nested {
			continue
		}
		want[top] = true
		dir := path.Dir(f)
		if strings.HasSuffix(f, ".go") && !slices.Contains(strings.Split(dir, "/"), "testdata") {
			want[dir] = true
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(want)) {
		if !listed[dir] {
			t.Errorf("README.md's Layout section does not list %s/: add one line saying its role", dir)
		}
	}
}

// TestRelativeLinks checks every relative link of every tracked Markdown
// file: the file (or folder) must exist, and a #fragment must name one of
// the target's headings.
func TestRelativeLinks(t *testing.T) {
	var mds []string
	for _, f := range trackedFiles(t) {
		if strings.HasSuffix(f, ".md") {
			mds = append(mds, f)
		}
	}
	if !slices.Contains(mds, "README.md") {
		t.Fatalf("Markdown files %v lack README.md", mds)
	}
	anchors := map[string]map[string]bool{} // by file, lazily
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		anchors[file] = headingAnchors(string(b))
		return anchors[file]
	}
	checked := 0
	for _, md := range mds {
		b, err := os.ReadFile(filepath.Join(root, md))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(b)) {
			target, frag, _ := strings.Cut(l.target, "#")
			if isExternal(target) {
				continue
			}
			checked++
			file := md
			if target != "" {
				if strings.HasPrefix(target, "/") {
					t.Errorf("%s:%d: link %q is absolute; make it relative", md, l.line, l.target)
					continue
				}
				file = path.Join(path.Dir(md), target)
				if file == ".." || strings.HasPrefix(file, "../") {
					t.Errorf("%s:%d: link %q leaves the repository", md, l.line, l.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(file))); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", md, l.line, l.target, file)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(file, ".md") && !anchorsOf(file)[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading #%s", md, l.line, l.target, file, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link parser is broken")
	}
}

// TestNoMachinePaths: the repository carries every fact it relies on, so no
// tracked file points into one machine's home or work directories.
func TestNoMachinePaths(t *testing.T) {
	// Spelled in pieces so that this file does not match itself.
	needles := []string{"/" + "work/", "/" + "root/", "/" + "home/", "/" + "Users/"}
	// allowed are paths inside a build container, not on anyone's machine.
	allowed := []struct{ file, text string }{
		{"deploy/Dockerfile.*", "target=/" + "root/.cache/go-build"},
	}
	files := trackedFiles(t)
	if len(files) < 10 {
		t.Fatalf("only %d tracked files found", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted in the work tree, not yet committed
			}
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue // binary
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, len(b)+1)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			for _, a := range allowed {
				if ok, _ := path.Match(a.file, f); ok {
					line = strings.ReplaceAll(line, a.text, "")
				}
			}
			for _, needle := range needles {
				if strings.Contains(line, needle) {
					t.Errorf("%s:%d: names a machine path (%s): %s", f, n, needle, strings.TrimSpace(sc.Text()))
				}
			}
		}
	}
}

type link struct {
	target string
	line   int
}

var (
	layoutLine = regexp.MustCompile("(?m)^\\s*- `([^`]+)`:")
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
)

// markdownLinks returns the link targets of a Markdown text, outside fenced
// code blocks and code spans.
func markdownLinks(text string) []link {
	var out []link
	fence := ""
	for i, line := range strings.Split(text, "\n") {
		if f, ok := fenceOf(line); ok {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence):
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{m[1], i + 1})
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			out = append(out, link{m[1], i + 1})
		}
	}
	return out
}

// fenceOf returns the fence (``` or ~~~, and longer) a line opens or closes.
func fenceOf(line string) (string, bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return "", false
	}
	for _, c := range []string{"`", "~"} {
		n := len(s) - len(strings.TrimLeft(s, c))
		if n >= 3 {
			return strings.Repeat(c, n), true
		}
	}
	return "", false
}

// headingAnchors returns the anchors GitHub gives a text's ATX headings:
// lower case, punctuation dropped, blanks turned into hyphens, and -1, -2
// for repeats.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(text, "\n") {
		if f, ok := fenceOf(line); ok {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence):
				fence = ""
			}
			continue
		}
		if fence != "" || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimLeft(line, "#")
		if len(line)-len(h) > 6 || (h != "" && h[0] != ' ') {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(h)) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func isExternal(target string) bool {
	return strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:")
}

// trackedFiles lists the repository's files relative to root, with slashes:
// what git tracks or would track (not ignored) when there is a git
// checkout, else the tree minus what .gitignore names.
func trackedFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil && len(out) > 0 {
		return strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	}
	// .gitignore's patterns: "/x" matches x at the root only, "x" any
	// file or folder named x.
	ignore := []string{".git"}
	if b, err := os.ReadFile(filepath.Join(root, ".gitignore")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				ignore = append(ignore, strings.TrimSuffix(l, "/"))
			}
		}
	}
	ignored := func(rel string) bool {
		for _, p := range ignore {
			if anchored, ok := strings.CutPrefix(p, "/"); ok {
				if m, _ := path.Match(anchored, rel); m {
					return true
				}
			} else if m, _ := path.Match(p, path.Base(rel)); m {
				return true
			}
		}
		return false
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the repository's files: %v", err)
	}
	return files
}

// goDecl is what the docs may name of one exported identifier: a function's
// parameters, or a type's methods and fields.
type goDecl struct {
	params   int  // parameters of a function, -1 for a type, var or const
	variadic bool // its last parameter is ...T
	members  map[string]*goDecl
}

// goAPI is every package of the module (outside testdata), keyed by
// package name, then by folder, then by exported identifier (with the
// tests, benchmarks and examples of its test files).
func goAPI(t *testing.T) map[string]map[string]map[string]*goDecl {
	t.Helper()
	api := map[string]map[string]map[string]*goDecl{}
	fset := token.NewFileSet()
	for _, f := range trackedFiles(t) {
		if !strings.HasSuffix(f, ".go") || slices.Contains(strings.Split(f, "/"), "testdata") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(root, filepath.FromSlash(f)), nil, parser.SkipObjectResolution)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		pkg := strings.TrimSuffix(file.Name.Name, "_test")
		if pkg == "main" {
			continue
		}
		if strings.HasSuffix(f, "_test.go") {
			// Of a test file, the docs may name the tests and benchmarks.
			file.Decls = slices.DeleteFunc(file.Decls, func(d ast.Decl) bool {
				fd, ok := d.(*ast.FuncDecl)
				return !ok || fd.Recv != nil || !regexp.MustCompile(`^(Test|Benchmark|Example|Fuzz)`).MatchString(fd.Name.Name)
			})
		}
		byDir := api[pkg]
		if byDir == nil {
			byDir = map[string]map[string]*goDecl{}
			api[pkg] = byDir
		}
		decls := byDir[path.Dir(f)]
		if decls == nil {
			decls = map[string]*goDecl{}
			byDir[path.Dir(f)] = decls
		}
		addDecls(decls, file)
	}
	return api
}

// addDecls adds a file's exported declarations, and the exported methods and
// fields of its types, to decls.
func addDecls(decls map[string]*goDecl, file *ast.File) {
	typeDecl := func(name string) *goDecl {
		d := decls[name]
		if d == nil {
			d = &goDecl{params: -1, members: map[string]*goDecl{}}
			decls[name] = d
		}
		return d
	}
	for _, d := range file.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			fn := funcDecl(d.Type)
			if d.Recv == nil {
				if d.Name.IsExported() {
					decls[d.Name.Name] = fn
				}
				continue
			}
			if recv := receiverName(d.Recv.List[0].Type); recv != "" && d.Name.IsExported() {
				typeDecl(recv).members[d.Name.Name] = fn
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					td := typeDecl(s.Name.Name)
					var fields *ast.FieldList
					switch tt := s.Type.(type) {
					case *ast.StructType:
						fields = tt.Fields
					case *ast.InterfaceType:
						fields = tt.Methods
					}
					for _, f := range fieldsOf(fields) {
						for _, n := range f.Names {
							if ft, ok := f.Type.(*ast.FuncType); ok {
								td.members[n.Name] = funcDecl(ft)
							} else {
								td.members[n.Name] = &goDecl{params: -1}
							}
						}
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							decls[n.Name] = &goDecl{params: -1}
						}
					}
				}
			}
		}
	}
}

func fieldsOf(fl *ast.FieldList) []*ast.Field {
	if fl == nil {
		return nil
	}
	return fl.List
}

func funcDecl(ft *ast.FuncType) *goDecl {
	d := &goDecl{}
	for _, f := range fieldsOf(ft.Params) {
		d.params += max(1, len(f.Names))
		_, d.variadic = f.Type.(*ast.Ellipsis)
	}
	return d
}

func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

var (
	// qualifiedName is pkg.Name, pkg.Type.Member or (*pkg.Type).Method in a
	// code span, with the arguments of a call.
	qualifiedName = regexp.MustCompile(`(?:^|[^\w.])(?:\(\*)?([a-z][a-z0-9]*)\.([A-Z]\w*\*?)\)?(?:\.([A-Z]\w*))?(\([^()]*\))?`)
	// bareCall is Name(args) or Type.Method(args) in a code span.
	bareCall = regexp.MustCompile(`(?:^|[^\w.*])([A-Z]\w*)(?:\.([A-Z]\w*))?(\([^()]*\))`)
)

// TestDocsNameRealIdentifiers keeps the READMEs and docs/*.md true to the
// code: every pkg.Name in a code span, where pkg is a package of this
// module, names an exported identifier of it (pkg.Type.Method a method or
// field), and a call written with its arguments has as many as the function
// takes (an argument "..." elides some; "opts..." needs a variadic function).
// In a package's own README a bare Name(args) or Type.Method(args) is
// checked the same way against the package and the packages under it.
func TestDocsNameRealIdentifiers(t *testing.T) {
	api := goAPI(t)
	checked := 0
	for _, md := range trackedFiles(t) {
		if path.Base(md) != "README.md" && !(path.Dir(md) == "docs" && strings.HasSuffix(md, ".md")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(md)))
		if err != nil {
			t.Fatal(err)
		}
		dir := path.Dir(md)
		for _, span := range codeSpans(string(b)) {
			for _, m := range qualifiedName.FindAllStringSubmatch(span.text, -1) {
				byDir, ok := api[m[1]]
				if !ok {
					continue // not a package of this module
				}
				checked++
				if msg := checkName(byDir, m[2], m[3], m[4]); msg != "" {
					t.Errorf("%s:%d: `%s`: %s", md, span.line, strings.TrimSpace(m[0]), msg)
				}
			}
			local := packagesUnder(api, dir)
			if len(local) == 0 || path.Base(md) != "README.md" {
				continue
			}
			for _, m := range bareCall.FindAllStringSubmatch(span.text, -1) {
				checked++
				// A bare name is the package's (or a method of one of its
				// types, named alone), else another package's the README
				// mentions in passing.
				msg := checkName(withMethods(local), m[1], m[2], m[3])
				if strings.Contains(msg, "no such") {
					msg = checkName(withMethods(packagesUnder(api, ".")), m[1], m[2], m[3])
				}
				if msg != "" {
					t.Errorf("%s:%d: `%s`: %s", md, span.line, strings.TrimSpace(m[0]), msg)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no identifier checked: the code span parser is broken")
	}
}

// packagesUnder returns the declarations of the packages in dir and below.
func packagesUnder(api map[string]map[string]map[string]*goDecl, dir string) map[string]map[string]*goDecl {
	out := map[string]map[string]*goDecl{}
	for _, byDir := range api {
		for d, decls := range byDir {
			if dir == "." || d == dir || strings.HasPrefix(d, dir+"/") {
				out[d] = decls
			}
		}
	}
	return out
}

// withMethods adds, to a copy of pkgs' declarations, every method and field
// under its own name, as a README names them when the type is clear.
func withMethods(pkgs map[string]map[string]*goDecl) map[string]map[string]*goDecl {
	out := map[string]map[string]*goDecl{}
	for dir, decls := range pkgs {
		all := maps.Clone(decls)
		for _, d := range decls {
			for name, m := range d.members {
				if _, ok := all[name]; !ok {
					all[name] = m
				}
			}
		}
		out[dir] = all
	}
	return out
}

// checkName says what is wrong with name (and member, and the call's
// arguments) in any of the packages given; "" when one of them has it so.
func checkName(pkgs map[string]map[string]*goDecl, name, member, call string) string {
	var found []*goDecl
	for _, decls := range pkgs {
		d, ok := decls[name]
		if prefix, wild := strings.CutSuffix(name, "*"); wild {
			ok = slices.ContainsFunc(slices.Collect(maps.Keys(decls)), func(n string) bool { return strings.HasPrefix(n, prefix) })
			d = &goDecl{params: -1}
		}
		if !ok {
			continue
		}
		if member != "" {
			if d = d.members[member]; d == nil {
				continue
			}
		}
		found = append(found, d)
	}
	full := name
	if member != "" {
		full += "." + member
	}
	if len(found) == 0 {
		where := "any package of the module"
		if len(pkgs) <= 3 {
			where = strings.Join(slices.Sorted(maps.Keys(pkgs)), ", ")
		}
		return fmt.Sprintf("%s: no such exported identifier in %s", full, where)
	}
	if call == "" {
		return ""
	}
	var want []string
	for _, d := range found {
		if d.params < 0 || argsFit(d, splitArgs(call[1:len(call)-1])) {
			return ""
		}
		w := fmt.Sprintf("%d arguments", d.params)
		if d.variadic {
			w = fmt.Sprintf("%d or more arguments", d.params-1)
		}
		if !slices.Contains(want, w) {
			want = append(want, w)
		}
	}
	return fmt.Sprintf("%s takes %s, not %s", full, strings.Join(want, " or "), call)
}

func argsFit(d *goDecl, args []string) bool {
	n := len(args)
	for _, a := range args {
		switch {
		case a == "..." || a == "…":
			return true // elided
		case strings.HasSuffix(a, "..."):
			if !d.variadic {
				return false
			}
			n--
		}
	}
	if d.variadic {
		return n >= d.params-1
	}
	return n == d.params
}

// splitArgs splits a call's arguments on the commas outside brackets.
func splitArgs(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

type span struct {
	text string
	line int
}

// codeSpans returns the inline code spans of a Markdown text, outside
// fenced code blocks; a span may run over the lines of a paragraph.
func codeSpans(text string) []span {
	var out []span
	fence := ""
	var para []string // the paragraph's lines so far
	first := 0        // the line number of its first line
	flush := func() {
		joined := strings.Join(para, "\n")
		for _, loc := range codeSpan.FindAllStringIndex(joined, -1) {
			m := joined[loc[0]:loc[1]]
			out = append(out, span{strings.Trim(strings.ReplaceAll(m, "\n", " "), "`"), first + strings.Count(joined[:loc[0]], "\n")})
		}
		para = nil
	}
	for i, line := range strings.Split(text, "\n") {
		if f, ok := fenceOf(line); ok {
			flush()
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence):
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if len(para) == 0 {
			first = i + 1
		}
		para = append(para, line)
	}
	flush()
	return out
}

// TestPackageDocInDocGo: a package's doc comment is where a reader looks
// for it, in doc.go or in the file named like the package, and only there.
func TestPackageDocInDocGo(t *testing.T) {
	fset := token.NewFileSet()
	for _, f := range trackedFiles(t) {
		if !strings.HasSuffix(f, ".go") || strings.HasSuffix(f, "_test.go") || slices.Contains(strings.Split(f, "/"), "testdata") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(root, filepath.FromSlash(f)), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		if file.Doc == nil || file.Name.Name == "main" || strings.HasPrefix(file.Doc.Text(), "Code generated") {
			continue
		}
		if base := strings.TrimSuffix(path.Base(f), ".go"); base != "doc" && base != file.Name.Name {
			t.Errorf("%s holds the doc of package %s: move it to doc.go (or %s.go)", f, file.Name.Name, file.Name.Name)
		}
	}
}
