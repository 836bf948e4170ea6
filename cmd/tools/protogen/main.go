// Command protogen regenerates the Go code of the .proto contracts with
// nothing but Go (see package proto/codegen): `make proto` runs it from the
// module root. The output is byte-identical to protoc + protoc-gen-go.
//
//	go run ./cmd/tools/protogen            # rewrite proto/inventory/v1/*.pb.go
//	go run ./cmd/tools/protogen -check     # fail if a committed file is stale
//	go run ./cmd/tools/protogen a/b.proto  # other files, relative to -root
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/inventory-events/inventory/proto/codegen"
)

func main() {
	root := flag.String("root", ".", "module root: the import path, and where the generated files go")
	check := flag.Bool("check", false, "write nothing; exit 1 if a generated file differs from the one on disk")
	version := flag.String("protoc-version", codegen.ProtocVersion, "protoc version named in the header of the generated files")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: protogen [flags] [file.proto ...]  (default proto/inventory/v1/*.proto)\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(context.Background(), *root, flag.Args(), *version, *check); err != nil {
		slog.Error("protogen", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root string, files []string, version string, check bool) error {
	if len(files) == 0 {
		var err error
		files, err = filepath.Glob(filepath.Join(root, "proto", "inventory", "v1", "*.proto"))
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("no proto/inventory/v1/*.proto under %s: run from the module root or set -root", root)
		}
		for i, f := range files {
			if files[i], err = filepath.Rel(root, f); err != nil {
				return err
			}
		}
	}
	out, err := codegen.Generate(ctx, root, files, codegen.Options{CompilerVersion: version})
	if err != nil {
		return err
	}
	var stale []string
	for _, name := range slices.Sorted(maps.Keys(out)) {
		path := filepath.Join(root, filepath.FromSlash(name))
		if check {
			old, err := os.ReadFile(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("check %s: %w", path, err)
			}
			if !bytes.Equal(old, out[name]) {
				stale = append(stale, path)
			}
			continue
		}
		if err := os.WriteFile(path, out[name], 0o644); err != nil {
			return fmt.Errorf("write generated code: %w", err)
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("stale generated code (run `make proto` and commit): %v", stale)
	}
	return nil
}
