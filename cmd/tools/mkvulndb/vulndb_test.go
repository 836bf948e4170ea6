package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeOSV(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func osvEntry(id, modified string, modules ...string) string {
	var aff []string
	for _, m := range modules {
		aff = append(aff, `{"package":{"name":"`+m+`","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}`)
	}
	return `{"schema_version":"1.3.1","id":"` + id + `","modified":"` + modified + `","affected":[` + strings.Join(aff, ",") + `]}`
}

func readModules(t *testing.T, db string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(db, "index", "modules.json"))
	if err != nil {
		t.Fatal(err)
	}
	var mods []moduleMeta
	if err := json.Unmarshal(b, &mods); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	var paths []string
	for _, m := range mods {
		paths = append(paths, m.Path)
		for _, v := range m.Vulns {
			got[m.Path] = append(got[m.Path], v.ID)
		}
	}
	if !slices.IsSorted(paths) {
		t.Errorf("modules index not sorted by path: %v", paths)
	}
	return got
}

func TestBuildKeepsEntriesOfListedModules(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
	writeOSV(t, src, "GO-2026-0001.json", osvEntry("GO-2026-0001", "2026-01-01T00:00:00Z", "stdlib"))
	writeOSV(t, src, "GO-2026-0002.json", osvEntry("GO-2026-0002", "2026-03-01T00:00:00Z", "example.com/used", "example.com/other", "example.com/used"))
	writeOSV(t, src, "GO-2026-0003.json", osvEntry("GO-2026-0003", "2026-05-01T00:00:00Z", "example.com/unused"))
	writeOSV(t, src, "GO-2026-0004.json", osvEntry("GO-2026-0004", "2026-02-01T00:00:00Z", "toolchain"))
	writeOSV(t, src, "README.md", "not an entry")

	mods := ParseModules("github.com/inventory-events/inventory\nexample.com/used v1.0.0\n\nexample.com/x v1.0.0 => ./x\n")
	st, err := Build(src, out, Keep(mods))
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 4 || st.Kept != 3 || st.Modules != 4 {
		t.Errorf("stats %+v, want 4 read, 3 kept, 4 modules", st)
	}
	got := readModules(t, out)
	want := map[string][]string{
		"stdlib":            {"GO-2026-0001"},
		"toolchain":         {"GO-2026-0004"},
		"example.com/used":  {"GO-2026-0002"}, // listed twice in the entry, indexed once
		"example.com/other": {"GO-2026-0002"},
	}
	if len(got) != len(want) {
		t.Errorf("modules index %v, want %v", got, want)
	}
	for m, ids := range want {
		if !slices.Equal(got[m], ids) {
			t.Errorf("module %s: %v, want %v", m, got[m], ids)
		}
	}
	for _, id := range []string{"GO-2026-0001", "GO-2026-0002", "GO-2026-0004"} {
		b, err := os.ReadFile(filepath.Join(out, "ID", id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := os.ReadFile(filepath.Join(src, id+".json"))
		if string(b) != string(orig) {
			t.Errorf("%s not copied byte for byte", id)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "ID", "GO-2026-0003.json")); !os.IsNotExist(err) {
		t.Errorf("entry of an unlisted module written (err %v)", err)
	}
	b, err := os.ReadFile(filepath.Join(out, "index", "db.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"modified":"2026-03-01T00:00:00Z"}`; string(b) != want {
		t.Errorf("db.json %s, want %s (newest kept entry)", b, want)
	}

	// A second build replaces the first: nothing stale is left behind.
	if _, err := Build(src, out, Keep(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "ID", "GO-2026-0002.json")); !os.IsNotExist(err) {
		t.Errorf("stale entry left after rebuild (err %v)", err)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary folder left behind (err %v)", err)
	}
}

func TestBuildNilKeepKeepsAll(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
	writeOSV(t, src, "GO-2026-0001.json", osvEntry("GO-2026-0001", "2026-01-01T00:00:00Z", "example.com/a"))
	writeOSV(t, src, "GO-2026-0002.json", osvEntry("GO-2026-0002", "2026-01-01T00:00:00Z", "example.com/b"))
	st, err := Build(src, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Kept != 2 || st.Modules != 2 {
		t.Errorf("stats %+v, want every entry kept", st)
	}
}

func TestBuildRejectsMisnamedEntry(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
	writeOSV(t, src, "GO-2026-0009.json", osvEntry("GO-2026-0001", "2026-01-01T00:00:00Z", "stdlib"))
	if _, err := Build(src, out, nil); err == nil || !strings.Contains(err.Error(), "<id>.json") {
		t.Fatalf("err %v, want a misnamed-entry error", err)
	}
}

func TestBuildWillNotReplaceAnUnrelatedFolder(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	writeOSV(t, src, "GO-2026-0001.json", osvEntry("GO-2026-0001", "2026-01-01T00:00:00Z", "stdlib"))
	writeOSV(t, out, "precious.txt", "keep me")
	if _, err := Build(src, out, nil); err == nil {
		t.Fatal("replaced a folder that is not a database")
	}
	if _, err := os.Stat(filepath.Join(out, "precious.txt")); err != nil {
		t.Fatalf("unrelated folder touched: %v", err)
	}
}
