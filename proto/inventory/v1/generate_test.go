package inventoryv1_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/inventory-events/inventory/proto/codegen"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from the .proto files
// with the pure-Go generator (proto/codegen: protocompile and the
// protoc-gen-go pinned in go.mod, byte-identical to protoc's output) and
// fails if the committed files differ: run `make proto` and commit.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	files, err := filepath.Glob("*.proto")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .proto files: %v", err)
	}
	for i, f := range files {
		files[i] = "proto/inventory/v1/" + f
	}
	got, err := codegen.Generate(context.Background(), "../../..", files, codegen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Errorf("generated %d files from %d .proto files", len(got), len(files))
	}
	for name, code := range got {
		committed, err := os.ReadFile(filepath.Base(name))
		if err != nil {
			t.Fatalf("%s: %v (run `make proto` and commit the result)", name, err)
		}
		if !bytes.Equal(committed, code) {
			t.Errorf("%s is stale: run `make proto` and commit the result", name)
		}
	}
}
