package docs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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
