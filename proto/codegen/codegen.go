// Package codegen generates the Go code of the .proto contracts with nothing
// but Go: github.com/bufbuild/protocompile parses and links the files, and
// the protoc-gen-go pinned in go.mod (a tool of the module, run with
// `go tool protoc-gen-go`) turns them into Go, reading the same
// CodeGeneratorRequest protoc would send it. The output is byte-identical to
// `protoc --go_out=. --go_opt=paths=source_relative` run from the module root,
// including the "protoc vX.Y.Z" version line, which is ProtocVersion unless
// Options.CompilerVersion says otherwise.
//
// Both `make proto` (cmd/tools/protogen) and the freshness test of
// proto/inventory/v1 use it.
package codegen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// ProtocVersion is the protoc the committed .pb.go files name in their
// header (Debian 12's protobuf-compiler, which generated them first). The
// version line is the only part of the output that depends on the compiler.
const ProtocVersion = "3.21.12"

// Options tune Generate. The zero value generates as `make proto` does.
type Options struct {
	// CompilerVersion is the protoc version written in the header of each
	// file, "major.minor.patch" with an optional "-suffix". Empty means
	// ProtocVersion.
	CompilerVersion string
	// Plugin is the protoc-gen-go command to run, program first. Empty means
	// `go tool protoc-gen-go`, which needs the working directory to be inside
	// this module (go.mod pins the tool).
	Plugin []string
}

// Generate compiles files (paths relative to root, which is also the only
// import path, as in `protoc -I root`) and returns the generated Go files by
// path relative to root. Imports of the well-known types
// (google/protobuf/*.proto) resolve without files on disk.
func Generate(ctx context.Context, root string, files []string, opts Options) (map[string][]byte, error) {
	if len(files) == 0 {
		return nil, errors.New("generate: no .proto files given")
	}
	version, err := parseVersion(opts.CompilerVersion)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.ToSlash(filepath.Clean(f))
	}
	compiler := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: []string{root},
		}),
		// Comments become doc comments of the generated code.
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	linked, err := compiler.Compile(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("generate: compile %s: %w", strings.Join(names, " "), err)
	}
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate:  names,
		Parameter:       proto.String("paths=source_relative"),
		CompilerVersion: version,
		ProtoFile:       topological(linked),
	}
	resp, err := runPlugin(ctx, opts.Plugin, req)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	out := make(map[string][]byte, len(resp.GetFile()))
	for _, f := range resp.GetFile() {
		if f.GetInsertionPoint() != "" {
			return nil, fmt.Errorf("generate: protoc-gen-go asked to insert into %s at %q, which this generator does not support", f.GetName(), f.GetInsertionPoint())
		}
		out[f.GetName()] = []byte(f.GetContent())
	}
	return out, nil
}

// topological lists the descriptors of files and everything they import,
// each after its imports, as protoc lists them in a CodeGeneratorRequest.
func topological(files linker.Files) []*descriptorpb.FileDescriptorProto {
	var list []*descriptorpb.FileDescriptorProto
	seen := map[string]bool{}
	var visit func(fd protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			visit(imports.Get(i).FileDescriptor)
		}
		list = append(list, descriptorProto(fd))
	}
	for _, f := range files {
		visit(f)
	}
	return list
}

// descriptorProto is the descriptor as protocompile built it from the source
// (with json_name on every field and the source code info, as protoc sends
// them), or, for a file that did not come from source (a well-known type),
// its descriptor from the Go registry.
func descriptorProto(fd protoreflect.FileDescriptor) *descriptorpb.FileDescriptorProto {
	if r, ok := fd.(linker.Result); ok {
		return r.FileDescriptorProto()
	}
	return protodesc.ToFileDescriptorProto(fd)
}

// runPlugin runs protoc-gen-go with req on stdin and returns its response.
func runPlugin(ctx context.Context, plugin []string, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	if len(plugin) == 0 {
		plugin = []string{"go", "tool", "protoc-gen-go"}
	}
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("marshal the code generator request: %w", err)
	}
	cmd := exec.CommandContext(ctx, plugin[0], plugin[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w\n%s", strings.Join(plugin, " "), err, stderr.Bytes())
	}
	resp := &pluginpb.CodeGeneratorResponse{}
	if err := proto.Unmarshal(stdout.Bytes(), resp); err != nil {
		return nil, fmt.Errorf("read the response of %s: %w", strings.Join(plugin, " "), err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: %s", strings.Join(plugin, " "), resp.GetError())
	}
	return resp, nil
}

// parseVersion reads "major.minor.patch[-suffix]"; empty means ProtocVersion.
func parseVersion(s string) (*pluginpb.Version, error) {
	if s == "" {
		s = ProtocVersion
	}
	num, suffix, _ := strings.Cut(s, "-")
	parts := strings.Split(num, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("compiler version %q: want major.minor.patch[-suffix]", s)
	}
	var n [3]int32
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("compiler version %q: %q is not a version number", s, p)
		}
		n[i] = int32(v)
	}
	v := &pluginpb.Version{Major: proto.Int32(n[0]), Minor: proto.Int32(n[1]), Patch: proto.Int32(n[2])}
	if suffix != "" {
		v.Suffix = proto.String(suffix)
	}
	return v, nil
}
