package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// buildFlags are the Dockerfiles' (deploy/Dockerfile.*): static, linux/amd64.
var buildFlags = []string{"-trimpath", "-tags", "timetzdata"}

// buildStep builds cmd/stream, cmd/nightly and cmd/trigger with
// CGO_ENABLED=0 GOOS=linux GOARCH=amd64, checks each is a static
// linux/amd64 executable whose build settings say so (what pipelines/launch
// requires of a worker binary), and runs it: the jobs print their flags for
// --help (Beam's among them), the trigger refuses to start without its
// production configuration.
func buildStep(ctx context.Context, c *check) (string, error) {
	dir := filepath.Join(c.tmp, "bin")
	args := append([]string{"build", "-o", dir + "/"}, buildFlags...)
	args = append(args, "./cmd/stream", "./cmd/nightly", "./cmd/trigger")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build: %v: %s", err, out)
	}
	took := time.Since(start).Round(time.Second)
	var sizes []string
	bins := map[string]string{}
	for _, name := range []string{"stream", "nightly", "trigger"} {
		path := filepath.Join(dir, name)
		if err := static(path); err != nil {
			return "", err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		sizes = append(sizes, fmt.Sprintf("%s %d MB", name, fi.Size()>>20))
		bins[name] = path
	}
	for name, want := range map[string][]string{
		"stream":  {"-subscription", "-warehouse", "-worker_binary", "-dataflow_endpoint", "-service_account_email"},
		"nightly": {"-date", "-warehouse", "-output", "-worker_binary"},
	} {
		out, err := c.run(ctx, c.tmp, nil, bins[name], "--help")
		if err != nil {
			return "", fmt.Errorf("%s --help: %v", name, err)
		}
		for _, f := range want {
			if !strings.Contains(out, f+" ") && !strings.Contains(out, f+"\n") && !strings.Contains(out, f+"=") {
				return "", fmt.Errorf("%s --help does not list %s", name, f)
			}
		}
	}
	out, err := c.run(ctx, c.tmp, []string{"MODE=production"}, bins["trigger"])
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "MODE=production needs PROJECT, REGION, TEMPLATE_GCS_PATH") {
		return "", fmt.Errorf("trigger without configuration: %v, output %q; want an exit naming the missing variables", err, out)
	}
	c.bins = bins
	return fmt.Sprintf("3 static linux/amd64 binaries in %v (%s); --help runs", took, strings.Join(sizes, ", ")), nil
}

// static checks path is a linux/amd64 ELF executable without an
// interpreter (no dynamic loader, no libc) built with CGO_ENABLED=0.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return fmt.Errorf("%s: %v %v, want an x86-64 executable", path, f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s: dynamically linked (has an interpreter)", path)
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	got := map[string]string{}
	for _, s := range info.Settings {
		got[s.Key] = s.Value
	}
	if got["CGO_ENABLED"] != "0" || got["GOOS"] != "linux" || got["GOARCH"] != "amd64" {
		return fmt.Errorf("%s: built with CGO_ENABLED=%q GOOS=%q GOARCH=%q", path, got["CGO_ENABLED"], got["GOOS"], got["GOARCH"])
	}
	return nil
}

// run runs bin with args in dir, with only the environment given (and
// PATH, HOME), logging its output to c.logs; it returns the output.
func (c *check) run(ctx context.Context, dir string, env []string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.tmp, "TMPDIR=" + c.tmp}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	fmt.Fprintf(c.logs, "$ %s %s\n%s\n", filepath.Base(bin), strings.Join(args, " "), out.String())
	return out.String(), err
}
