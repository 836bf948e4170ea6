package inventoryv1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from the .proto files
// with protoc and the protoc-gen-go pinned in go.mod, and fails if the
// committed files differ: run `make proto` and commit.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Fatal("protoc not found: install Debian's protobuf-compiler (make deps) to check the generated code")
	}
	tmp := t.TempDir()
	plugin := filepath.Join(tmp, "protoc-gen-go")
	build := exec.Command("go", "build", "-o", plugin, "google.golang.org/protobuf/cmd/protoc-gen-go")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build protoc-gen-go: %v\n%s", err, out)
	}
	root := "../../.."
	files, _ := filepath.Glob("*.proto")
	args := []string{"--plugin=protoc-gen-go=" + plugin, "--go_out=" + tmp, "--go_opt=paths=source_relative", "-I", "."}
	for _, f := range files {
		args = append(args, "proto/inventory/v1/"+f)
	}
	cmd := exec.Command(protoc, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	for _, f := range files {
		gen := f[:len(f)-len(".proto")] + ".pb.go"
		want, err := os.ReadFile(filepath.Join(tmp, "proto/inventory/v1", gen))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(gen)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make proto` and commit the result", gen)
		}
	}
}
