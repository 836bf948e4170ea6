// Package deploy_test checks the deployment files against each other and
// against the code: Dockerfiles build the main packages the Makefile builds,
// the Flex Template metadata names flags the jobs define, cloudbuild.yaml
// builds what it pushes and configures the trigger with the variables it
// reads, the IAM table of README.md is what iam.sh grants, and no
// secret is in the repository's deployment files.
package deploy_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const root = ".."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerfile is the parts of a Dockerfile the checks need.
type dockerfile struct {
	froms      []string // base image of each stage
	buildPkgs  []string // go build targets (./cmd/x)
	copies     []string // COPY --from=... destinations in the last stage
	env        map[string]string
	entrypoint string
	user       string
	text       string
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	text := read(t, path)
	d := dockerfile{env: map[string]string{}, text: text}
	joined := strings.ReplaceAll(text, "\\\n", " ")
	args := map[string]string{}
	for _, line := range strings.Split(joined, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			d.froms = append(d.froms, f[1])
			d.copies = nil
		case "ARG":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				args[k] = v
			}
		case "ENV":
			for _, kv := range f[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					d.env[k] = expand(strings.Trim(v, `"`), args)
				}
			}
		case "COPY":
			if strings.HasPrefix(f[1], "--from=") {
				d.copies = append(d.copies, expand(f[len(f)-1], args))
			}
		case "ENTRYPOINT":
			var ep []string
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, f[0]))), &ep); err != nil || len(ep) == 0 {
				t.Fatalf("%s: ENTRYPOINT must be exec form: %q", path, line)
			}
			d.entrypoint = ep[0]
		case "USER":
			d.user = f[1]
		}
		for i, w := range f {
			if w == "build" && i > 0 && f[i-1] == "go" {
				for _, a := range f[i+1:] {
					if strings.HasPrefix(a, "./") {
						d.buildPkgs = append(d.buildPkgs, strings.TrimPrefix(a, "./"))
					}
				}
			}
		}
	}
	return d
}

// pinnedImage reports whether a FROM names its image by digest, or by a tag
// that names one release: a full version (golang:1.26.1-bookworm) or a
// dated release (flex_templates_base_image_release_20260112_RC00). latest,
// nonroot and a bare minor version (golang:1.26) move.
func pinnedImage(ref string) bool {
	if regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(ref) {
		return true
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return false
	}
	return regexp.MustCompile(`^\d+\.\d+\.\d+(-[a-z0-9]+)?$|^flex_templates_base_image_release_\d{8}_RC\d\d$`).MatchString(ref[i+1:])
}

func expand(s string, args map[string]string) string {
	return os.Expand(s, func(k string) string { return args[k] })
}

// goFiles returns the non-test Go files of dir (relative to the root, or
// absolute).
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	m, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(m, func(p string) bool { return strings.HasSuffix(p, "_test.go") })
}

// flagNames parses the flags defined with the flag package (flag.String,
// flag.IntVar, fs.Duration, ...) in the Go files of dirs.
func flagNames(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	defs := map[string]int{"String": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Bool": 0, "Float64": 0,
		"Duration": 0, "Func": 0, "BoolFunc": 0, "TextVar": 1, "Var": 1, "StringVar": 1, "IntVar": 1,
		"Int64Var": 1, "UintVar": 1, "Uint64Var": 1, "BoolVar": 1, "Float64Var": 1, "DurationVar": 1}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		for _, path := range goFiles(t, dir) {
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pos, ok := defs[sel.Sel.Name]
				if !ok || len(call.Args) <= pos+1 {
					return true
				}
				if lit, ok := call.Args[pos].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						names[s] = true
					}
				}
				return true
			})
		}
	}
	return names
}

// beamDataflowRunnerDir is the source directory of the Beam Go SDK's
// Dataflow runner in the module cache, at the version go.mod requires.
func beamDataflowRunnerDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/apache/beam/sdks/v2")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m github.com/apache/beam/sdks/v2: %v %s", err, out)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "go", "pkg", "beam", "runners", "dataflow")
}

func TestDockerfiles(t *testing.T) {
	goMod := read(t, "go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	goVersion := m[1]
	tc := regexp.MustCompile(`(?m)^export GOTOOLCHAIN := (\S+)`).FindStringSubmatch(read(t, "Makefile"))
	if tc == nil {
		t.Fatal("the Makefile sets no GOTOOLCHAIN")
	}

	for _, job := range []string{"trigger", "stream", "nightly"} {
		t.Run(job, func(t *testing.T) {
			d := parseDockerfile(t, "deploy/Dockerfile."+job)
			if len(d.froms) < 2 {
				t.Fatalf("want a multi-stage build, got stages %v", d.froms)
			}
			if !strings.HasPrefix(d.froms[0], "golang:"+goVersion) {
				t.Errorf("build stage %s, want golang:%s (go.mod)", d.froms[0], goVersion)
			}
			if d.env["GOTOOLCHAIN"] != tc[1] {
				t.Errorf("build stage GOTOOLCHAIN=%q, want the Makefile's %s (the Go that CI scans)", d.env["GOTOOLCHAIN"], tc[1])
			}
			if !slices.Equal(d.buildPkgs, []string{"cmd/" + job}) {
				t.Errorf("go build targets %v, want [cmd/%s]", d.buildPkgs, job)
			}
			if !strings.Contains(d.text, "CGO_ENABLED=0 GOOS=linux GOARCH=amd64") || strings.Contains(d.text, "CGO_ENABLED=1") {
				t.Error("binary must be static for linux/amd64 (CGO_ENABLED=0 GOOS=linux GOARCH=amd64): Beam stages a job's own binary as the Dataflow worker only then, and the launcher base has no libc to match")
			}
			for _, from := range d.froms {
				if !pinnedImage(from) {
					t.Errorf("FROM %s is not pinned: give a digest (@sha256:...) or a release tag, never a floating one (deploy/README.md, Base images)", from)
				}
			}
			final := d.froms[len(d.froms)-1]
			switch job {
			case "trigger":
				if !strings.HasPrefix(final, "gcr.io/distroless/static") || d.user == "" || !strings.Contains(d.user, "nonroot") {
					t.Errorf("trigger runtime %s as user %q, want distroless static as nonroot", final, d.user)
				}
			default:
				if !strings.HasPrefix(final, "gcr.io/dataflow-templates-base/go-template-launcher-base") {
					t.Errorf("template runtime %s, want the Go Flex Template launcher base", final)
				}
				bin := d.env["FLEX_TEMPLATE_GO_BINARY"]
				if bin == "" || !slices.Contains(d.copies, bin) {
					t.Errorf("FLEX_TEMPLATE_GO_BINARY=%q is not the copied binary %v", bin, d.copies)
				}
				if d.entrypoint != "/opt/google/dataflow/go_template_launcher" {
					t.Errorf("entrypoint %q, want the Go template launcher", d.entrypoint)
				}
				if uid, _, _ := strings.Cut(d.user, ":"); uid == "" || uid == "0" || uid == "root" {
					t.Errorf("template image runs as user %q, want a non-root user", d.user)
				}
			}
			if files := goFiles(t, "cmd/"+job); len(files) == 0 {
				t.Logf("cmd/%s has no Go source yet: its main package is checked once it lands", job)
			} else if !strings.Contains(read(t, strings.TrimPrefix(files[0], root+"/")), "package main") {
				t.Errorf("cmd/%s is not a main package", job)
			}
		})
	}
}

// TestMakefileBuildsTheDeployedCommands cross-checks the Makefile (the local
// build) with the images: every command an image builds, the Makefile builds
// too, and every Dockerfile the Makefile names exists.
func TestMakefileBuildsTheDeployedCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if os.IsNotExist(err) {
		t.Log("no Makefile yet: the cross-check runs once it lands")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	for _, cmd := range []string{"stream", "nightly", "trigger", "inventory"} {
		if !regexp.MustCompile(`(^|[\s./])cmd/` + cmd + `\b`).MatchString(mk) {
			t.Errorf("the Makefile does not build cmd/%s", cmd)
		}
	}
	for _, m := range regexp.MustCompile(`deploy/[\w.\-/]+`).FindAllString(mk, -1) {
		if _, err := os.Stat(filepath.Join(root, m)); err != nil {
			t.Errorf("the Makefile names %s: %v", m, err)
		}
	}
}

type metadata struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Streaming   bool   `json:"streaming"`
	Parameters  []struct {
		Name       string   `json:"name"`
		Label      string   `json:"label"`
		HelpText   string   `json:"helpText"`
		IsOptional *bool    `json:"isOptional"`
		Regexes    []string `json:"regexes"`
	} `json:"parameters"`
}

func readMetadata(t *testing.T, job string) metadata {
	t.Helper()
	var m metadata
	dec := json.NewDecoder(strings.NewReader(read(t, "deploy/templates/"+job+"-metadata.json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s metadata: %v", job, err)
	}
	return m
}

func TestTemplateMetadata(t *testing.T) {
	name := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for _, job := range []string{"stream", "nightly"} {
		t.Run(job, func(t *testing.T) {
			m := readMetadata(t, job)
			if m.Name == "" || m.Description == "" || len(m.Parameters) == 0 {
				t.Fatalf("metadata incomplete: %+v", m)
			}
			if m.Streaming != (job == "stream") {
				t.Errorf("streaming = %v", m.Streaming)
			}
			seen := map[string]bool{}
			for _, p := range m.Parameters {
				if !name.MatchString(p.Name) || seen[p.Name] {
					t.Errorf("parameter name %q is not a unique flag name", p.Name)
				}
				seen[p.Name] = true
				if p.Label == "" || p.HelpText == "" || p.IsOptional == nil {
					t.Errorf("parameter %s needs label, helpText and isOptional", p.Name)
				}
				for _, re := range p.Regexes {
					if _, err := regexp.Compile(re); err != nil {
						t.Errorf("parameter %s regex %q: %v", p.Name, re, err)
					}
				}
			}

			flags := flagNames(t, "cmd/"+job, "pipelines/"+job)
			// Beam's Dataflow runner flags (network, subnetwork,
			// no_use_public_ips) are the binary's flags too.
			maps.Copy(flags, flagNames(t, beamDataflowRunnerDir(t)))
			if len(goFiles(t, "cmd/"+job)) == 0 {
				t.Logf("cmd/%s has no Go source yet: parameters are checked against its flags once it lands", job)
				return
			}
			if len(flags) == 0 {
				t.Fatalf("cmd/%s and pipelines/%s define no flags: a Flex Template passes its parameters as flags", job, job)
			}
			for p := range seen {
				if !flags[p] {
					t.Errorf("template parameter %q is not a flag of cmd/%s (flags: %v)", p, job, slices.Sorted(maps.Keys(flags)))
				}
			}
		})
	}

	// The trigger passes the report date as "date" (DATE_PARAMETER's default).
	m := readMetadata(t, "nightly")
	i := slices.IndexFunc(m.Parameters, func(p struct {
		Name       string   `json:"name"`
		Label      string   `json:"label"`
		HelpText   string   `json:"helpText"`
		IsOptional *bool    `json:"isOptional"`
		Regexes    []string `json:"regexes"`
	}) bool {
		return p.Name == "date"
	})
	if i < 0 || *m.Parameters[i].IsOptional {
		t.Fatal("the nightly template needs a required date parameter")
	}
	for _, re := range m.Parameters[i].Regexes {
		r := regexp.MustCompile(re)
		if !r.MatchString("2026-11-24") || r.MatchString("2026-11-24T00:00:00Z") {
			t.Errorf("date regex %q does not match exactly YYYY-MM-DD", re)
		}
	}
}

type cloudbuild struct {
	Timeout       string            `yaml:"timeout"`
	Substitutions map[string]string `yaml:"substitutions"`
	Options       map[string]any    `yaml:"options"`
	Steps         []struct {
		ID         string   `yaml:"id"`
		Name       string   `yaml:"name"`
		Entrypoint string   `yaml:"entrypoint"`
		WaitFor    []string `yaml:"waitFor"`
		Args       []string `yaml:"args"`
	} `yaml:"steps"`
	Images []string `yaml:"images"`
}

func readCloudbuild(t *testing.T) (cloudbuild, string) {
	t.Helper()
	text := read(t, "deploy/cloudbuild.yaml")
	var cb cloudbuild
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&cb); err != nil {
		t.Fatal(err)
	}
	return cb, text
}

func TestCloudbuild(t *testing.T) {
	cb, text := readCloudbuild(t)

	// Sized for three static Beam builds in parallel (one takes about 5
	// minutes on 2 cores; Cloud Build's default is 10 minutes on 2 vCPUs).
	if d, err := time.ParseDuration(cb.Timeout); err != nil || d < 30*time.Minute {
		t.Errorf("timeout %q: want at least 1800s", cb.Timeout)
	}
	if mt, _ := cb.Options["machineType"].(string); !regexp.MustCompile(`^E2_HIGHCPU_(8|32)$|^N1_HIGHCPU_(8|32)$`).MatchString(mt) {
		t.Errorf("options.machineType %q: want 8 or more vCPUs (E2_HIGHCPU_8)", mt)
	}
	// Template specs in a bucket of their own, apart from the jobs' staging
	// bucket (which the jobs' accounts write).
	tb, db := cb.Substitutions["_TEMPLATES_BUCKET"], cb.Substitutions["_NIGHTLY_BUCKET"]
	if tb == "" || tb == db {
		t.Errorf("_TEMPLATES_BUCKET %q must be set and differ from _NIGHTLY_BUCKET %q", tb, db)
	}
	// The nightly job's staging bucket is iam.sh's, and not the stream's.
	iamBuckets := scriptBuckets(read(t, "deploy/iam.sh"))
	if "PROJECT"+strings.TrimPrefix(db, "${PROJECT_ID}") != iamBuckets["NIGHTLY_BUCKET"] || iamBuckets["NIGHTLY_BUCKET"] == iamBuckets["STREAM_BUCKET"] {
		t.Errorf("_NIGHTLY_BUCKET %q: iam.sh has NIGHTLY_BUCKET %q and STREAM_BUCKET %q; want the first, apart from the second", db, iamBuckets["NIGHTLY_BUCKET"], iamBuckets["STREAM_BUCKET"])
	}
	if strings.TrimPrefix(tb, "${PROJECT_ID}") != strings.TrimPrefix(regexp.MustCompile(`(?m)^TEMPLATES_BUCKET="\$\{TEMPLATES_BUCKET:-\$\{PROJECT\}([-_a-z]+)\}"`).FindStringSubmatch(read(t, "deploy/iam.sh"))[1], "") {
		t.Errorf("_TEMPLATES_BUCKET %q is not iam.sh's TEMPLATES_BUCKET", tb)
	}

	// Every user substitution used is defined; built-ins are Cloud Build's.
	for _, m := range regexp.MustCompile(`\$\{(_[A-Z_]+)\}`).FindAllStringSubmatch(text, -1) {
		if _, ok := cb.Substitutions[m[1]]; !ok {
			t.Errorf("substitution %s is used but not defined", m[1])
		}
	}
	ids := map[string]bool{}
	built, pushed := map[string]bool{}, map[string]bool{}
	var templates []string
	var deployArgs []string
	for _, s := range cb.Steps {
		if ids[s.ID] {
			t.Errorf("duplicate step id %s", s.ID)
		}
		for _, w := range s.WaitFor {
			if w != "-" && !ids[w] {
				t.Errorf("step %s waits for %s, which does not run before it", s.ID, w)
			}
		}
		ids[s.ID] = true
		a := s.Args
		switch {
		case len(a) > 0 && a[0] == "build":
			i := slices.Index(a, "-f")
			if i < 0 {
				t.Fatalf("step %s: docker build without -f", s.ID)
			}
			if _, err := os.Stat(filepath.Join(root, a[i+1])); err != nil {
				t.Errorf("step %s builds %s: %v", s.ID, a[i+1], err)
			}
			built[a[slices.Index(a, "-t")+1]] = true
			if a[len(a)-1] != "." {
				t.Errorf("step %s: the build context must be the repository root", s.ID)
			}
		case len(a) > 0 && a[0] == "push":
			pushed[a[1]] = true
		case len(a) > 2 && a[0] == "dataflow" && a[1] == "flex-template":
			for _, x := range a {
				if f, ok := strings.CutPrefix(x, "--metadata-file="); ok {
					if _, err := os.Stat(filepath.Join(root, f)); err != nil {
						t.Errorf("step %s: %v", s.ID, err)
					}
				}
				if img, ok := strings.CutPrefix(x, "--image="); ok && !pushed[img] {
					t.Errorf("step %s uses image %s before it is pushed", s.ID, img)
				}
			}
			if !slices.Contains(a, "--sdk-language=GO") {
				t.Errorf("step %s: want --sdk-language=GO", s.ID)
			}
			if !strings.HasPrefix(a[3], "gs://${_TEMPLATES_BUCKET}/") {
				t.Errorf("step %s writes the template spec to %s, want the templates bucket gs://${_TEMPLATES_BUCKET}/", s.ID, a[3])
			}
			templates = append(templates, a[3])
		case len(a) > 2 && a[0] == "run" && a[1] == "deploy":
			deployArgs = a
		}
	}
	if !maps.Equal(built, pushed) || len(built) != 3 {
		t.Errorf("built %v, pushed %v: want the same three images", slices.Sorted(maps.Keys(built)), slices.Sorted(maps.Keys(pushed)))
	}
	for _, img := range cb.Images {
		if !built[img] {
			t.Errorf("images lists %s, which no step builds", img)
		}
	}
	if len(deployArgs) == 0 {
		t.Fatal("no gcloud run deploy step")
	}

	// The trigger's environment: every variable is one cmd/trigger reads,
	// the required ones are set, and the parameters fit the nightly template.
	var envArg string
	for _, a := range deployArgs {
		if v, ok := strings.CutPrefix(a, "--set-env-vars="); ok {
			envArg = v
		}
	}
	sep := ","
	if strings.HasPrefix(envArg, "^") {
		end := strings.Index(envArg[1:], "^") + 1
		sep, envArg = envArg[1:end], envArg[end+1:]
	}
	env := map[string]string{}
	for _, kv := range strings.Split(envArg, sep) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	reads := envReads(t)
	for k := range env {
		if !reads[k] {
			t.Errorf("cloudbuild sets %s, which cmd/trigger does not read", k)
		}
	}
	for _, k := range []string{"MODE", "PROJECT", "REGION", "TEMPLATE_GCS_PATH", "EXPECTED_AUDIENCE", "INVOKER_SA_EMAIL"} {
		if env[k] == "" {
			t.Errorf("cloudbuild does not set %s for the trigger", k)
		}
	}
	if env["MODE"] != "production" {
		t.Errorf("MODE=%s, want production", env["MODE"])
	}
	if !slices.Contains(templates, env["TEMPLATE_GCS_PATH"]) {
		t.Errorf("TEMPLATE_GCS_PATH=%s is not a template the build writes (%v)", env["TEMPLATE_GCS_PATH"], templates)
	}
	nightly := readMetadata(t, "nightly")
	for _, kv := range strings.Split(env["TEMPLATE_PARAMETERS"], ",") {
		k, _, _ := strings.Cut(kv, "=")
		if k == "date" || !slices.ContainsFunc(nightly.Parameters, func(p struct {
			Name       string   `json:"name"`
			Label      string   `json:"label"`
			HelpText   string   `json:"helpText"`
			IsOptional *bool    `json:"isOptional"`
			Regexes    []string `json:"regexes"`
		}) bool {
			return p.Name == k
		}) {
			t.Errorf("TEMPLATE_PARAMETERS sets %q, which is not a nightly template parameter the trigger may set", k)
		}
	}
	for _, k := range []string{"STAGING_LOCATION", "TEMP_LOCATION"} {
		if !strings.HasPrefix(env[k], "gs://${_NIGHTLY_BUCKET}/") {
			t.Errorf("%s=%s: want the nightly job's bucket gs://${_NIGHTLY_BUCKET}/", k, env[k])
		}
	}
	// The network: the launcher VM (SUBNETWORK) and the workers (Beam's
	// flags, as template parameters) on one subnetwork, no public IPs;
	// the report judges stock by the stream's thresholds.
	params := map[string]string{}
	for _, kv := range strings.Split(env["TEMPLATE_PARAMETERS"], ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = v
	}
	if env["SUBNETWORK"] == "" || params["subnetwork"] != env["SUBNETWORK"] || params["no_use_public_ips"] != "true" {
		t.Errorf("SUBNETWORK=%q, parameters subnetwork=%q no_use_public_ips=%q: want one subnetwork and no public IPs", env["SUBNETWORK"], params["subnetwork"], params["no_use_public_ips"])
	}
	if params["thresholds"] != "gs://${_CONFIG_BUCKET}/thresholds.csv" {
		t.Errorf("TEMPLATE_PARAMETERS thresholds=%q: the nightly report must judge stock by the thresholds the stream reads", params["thresholds"])
	}
	if !strings.HasPrefix(env["DATAFLOW_SERVICE_ACCOUNT"], "inventory-nightly@") {
		t.Errorf("DATAFLOW_SERVICE_ACCOUNT=%s: the trigger launches as inventory-nightly", env["DATAFLOW_SERVICE_ACCOUNT"])
	}
	if !strings.Contains(text, "id: trigger-audiences") || !strings.Contains(text, "EXPECTED_AUDIENCE=$$audiences") {
		t.Error("no step adds the service's other URL to EXPECTED_AUDIENCE: a Scheduler job using it would get 401")
	}
	// Cloud Run's invoker check stays off until the service accepts a token
	// whose signature Cloud Run verified and removed (deploy/README.md, IAM
	// notes); the grant it needs (run.invoker) is in iam.sh already.
	if !slices.Contains(deployArgs, "--no-invoker-iam-check") && strings.Contains(read(t, "reports/trigger/oidc.go"), "deploy with --no-invoker-iam-check") {
		t.Error("the service refuses tokens whose signature Cloud Run's invoker check removed: keep --no-invoker-iam-check until it accepts them")
	}
}

// envReads returns the environment variables cmd/trigger reads (env("X", ...)).
func envReads(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`env\("([A-Z_]+)"`).FindAllStringSubmatch(read(t, "cmd/trigger/config.go"), -1) {
		out[m[1]] = true
	}
	if len(out) < 5 {
		t.Fatalf("found only %v in cmd/trigger/config.go", out)
	}
	return out
}

// grant is one IAM binding: who, which role, on what ("project", "bucket
// PROJECT-dataflow", "subscription inventory-sub", ...).
type grant struct{ Account, Role, On string }

// scriptGrants parses the grants of iam.sh: its helper calls
// (project_role, bucket_role, topic_role, subscription_role, dataset_role,
// repo_role, sa_user) and the run.invoker binding on the service.
func scriptGrants(t *testing.T, script string) (grants map[grant]bool, created map[string]bool) {
	t.Helper()
	created = map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^ensure_sa (inventory-[a-z-]+)`).FindAllStringSubmatch(script, -1) {
		created[m[1]] = true
	}
	members := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)="serviceAccount:\$\(sa (inventory-[a-z-]+)\)"`).FindAllStringSubmatch(script, -1) {
		members[m[1]] = m[2]
	}
	buckets := scriptBuckets(script)
	member := func(s string) string {
		s = strings.Trim(s, `"`)
		if v, ok := strings.CutPrefix(s, "$"); ok {
			if a, ok := members[v]; ok {
				return a
			}
			t.Fatalf("iam.sh: unknown member %s", s)
		}
		if strings.HasPrefix(s, "group:${ANALYSTS_GROUP}") {
			return "group analysts@"
		}
		t.Fatalf("iam.sh: unknown member %s", s)
		return ""
	}
	bucket := func(s string) string {
		b, ok := buckets[strings.Trim(strings.TrimPrefix(strings.Trim(s, `"`), "$"), "{}")]
		if !ok {
			t.Fatalf("iam.sh: unknown bucket %s", s)
		}
		return "bucket " + b
	}
	roles := map[string]string{} // "$LAUNCHER_ROLE" -> projects/PROJECT/roles/inventoryFlexLauncher
	for id, r := range scriptCustomRoles(t, script) {
		roles["$"+r.variable] = "projects/PROJECT/roles/" + id
	}
	role := func(s string) string {
		s = strings.Trim(s, `"`)
		if strings.HasPrefix(s, "$") {
			r, ok := roles[s]
			if !ok {
				t.Fatalf("iam.sh: unknown role %s", s)
			}
			return r
		}
		return s
	}
	grants = map[grant]bool{}
	add := func(g grant) {
		g.Role = role(g.Role)
		if grants[g] {
			t.Errorf("iam.sh grants %v twice", g)
		}
		grants[g] = true
	}
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case "project_role":
			add(grant{member(f[1]), f[2], "project"})
		case "dataset_role":
			add(grant{member(f[1]), f[2], "dataset inventory"})
		case "table_role":
			add(grant{member(f[2]), f[3], "table " + f[1]})
		case "repo_role":
			add(grant{member(f[1]), f[2], "repository inventory"})
		case "bucket_role":
			add(grant{member(f[2]), f[3], bucket(f[1])})
		case "topic_role":
			add(grant{member(f[2]), f[3], "topic " + f[1]})
		case "subscription_role":
			add(grant{member(f[2]), f[3], "subscription " + f[1]})
		case "sa_user":
			add(grant{member(f[2]), "roles/iam.serviceAccountUser", "service account " + f[1]})
		}
	}
	if m := regexp.MustCompile(`--member "\$SCHEDULER" --role (roles/run\.invoker)`).FindStringSubmatch(script); m != nil {
		add(grant{"inventory-scheduler", m[1], "service nightly-trigger"})
	}
	if m := regexp.MustCompile(`\$\(sa inventory-scheduler\)" --project "\$PROJECT" \\\n\s+--member "\$OPERATOR" --role (roles/iam\.serviceAccountTokenCreator)`).FindStringSubmatch(script); m != nil {
		add(grant{"operator", m[1], "service account inventory-scheduler"})
	}
	return grants, created
}

// customRole is a role iam.sh defines: custom_role ID TITLE PERMISSIONS.
type customRole struct {
	variable    string // LAUNCHER_ROLE
	permissions []string
}

func scriptCustomRoles(t *testing.T, script string) map[string]customRole {
	t.Helper()
	out := map[string]customRole{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+_ROLE)=\$\(custom_role (\w+) "[^"]*" ([a-zA-Z.,]+)\)$`).FindAllStringSubmatch(script, -1) {
		out[m[2]] = customRole{m[1], strings.Split(m[3], ",")}
	}
	return out
}

// scriptBuckets maps iam.sh's bucket variables to their default names
// (STREAM_BUCKET -> PROJECT-dataflow-stream).
func scriptBuckets(script string) map[string]string {
	buckets := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+_BUCKET)="\$\{[A-Z_]+:-\$\{PROJECT\}([-_a-z]+)\}"`).FindAllStringSubmatch(script, -1) {
		buckets[m[1]] = "PROJECT" + m[2]
	}
	return buckets
}

// readmeGrants parses the IAM table of README.md: | account | API called |
// role | on |, one grant per row.
func readmeGrants(t *testing.T, doc string) map[grant]bool {
	t.Helper()
	i := strings.Index(doc, "| Service account | API called | Role granted | On |")
	if i < 0 {
		t.Fatal("README.md has no IAM table (| Service account | API called | Role granted | On |)")
	}
	out := map[grant]bool{}
	tick := strings.NewReplacer("`", "")
	for _, line := range strings.Split(doc[i:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 4 {
			t.Fatalf("IAM row %q: want 4 cells", line)
		}
		account := tick.Replace(cells[0])
		if strings.HasPrefix(account, "group analysts@") {
			account = "group analysts@"
		}
		if strings.HasPrefix(account, "operator") {
			account = "operator"
		}
		if strings.TrimSpace(cells[1]) == "" {
			t.Errorf("IAM row %q: which API does the account call?", line)
		}
		g := grant{account, tick.Replace(cells[2]), tick.Replace(cells[3])}
		if out[g] {
			t.Errorf("IAM table lists %v twice", g)
		}
		out[g] = true
	}
	return out
}

func TestIAM(t *testing.T) {
	doc, script := read(t, "deploy/README.md"), read(t, "deploy/iam.sh")
	_, build := readCloudbuild(t)
	table := readmeGrants(t, doc)
	granted, created := scriptGrants(t, script)

	for g := range table {
		if !granted[g] {
			t.Errorf("README's IAM table lists %v, which iam.sh does not grant", g)
		}
	}
	for g := range granted {
		if !table[g] {
			t.Errorf("iam.sh grants %v, which README's IAM table does not list", g)
		}
	}
	inTable := map[string]bool{}
	for g := range table {
		if strings.HasPrefix(g.Account, "inventory-") {
			inTable[g.Account] = true
		}
	}
	if len(created) < 5 || !maps.Equal(inTable, created) {
		t.Errorf("the IAM table's accounts %v, iam.sh creates %v", slices.Sorted(maps.Keys(inTable)), slices.Sorted(maps.Keys(created)))
	}
	for _, m := range regexp.MustCompile(`(inventory-[a-z-]+)@`).FindAllStringSubmatch(build, -1) {
		if !created[m[1]] {
			t.Errorf("cloudbuild.yaml uses %s, which iam.sh does not create", m[1])
		}
	}
	for g := range granted {
		for _, broad := range []string{"roles/owner", "roles/editor", "roles/viewer", "roles/iam.serviceAccountKeyAdmin"} {
			if g.Role == broad {
				t.Errorf("%v is not least privilege", g)
			}
		}
	}

	// What the code calls, account by account: each needs its grant.
	for _, need := range []struct {
		grant
		why string
	}{
		{grant{"inventory-stream", "roles/bigquery.jobUser", "project"}, "the stream's restore runs BigQuery query jobs"},
		{grant{"inventory-stream", "roles/bigquery.dataEditor", "dataset inventory"}, "the stream appends rows with the Storage Write API"},
		{grant{"inventory-stream", "roles/pubsub.subscriber", "subscription inventory-sub"}, "the native read pulls inventory-sub"},
		{grant{"inventory-stream", "roles/pubsub.publisher", "topic low-stock-alerts"}, "the stream publishes alerts"},
		{grant{"inventory-stream", "roles/pubsub.publisher", "topic inventory-dead-letter"}, "the stream publishes dead letters"},
		{grant{"inventory-stream", "roles/storage.objectAdmin", "bucket PROJECT-dataflow-stream"}, "Beam stages the worker binary and the model"},
		{grant{"inventory-nightly", "roles/storage.objectAdmin", "bucket PROJECT-dataflow-nightly"}, "Beam stages the worker binary and the model"},
		{grant{"inventory-nightly", "roles/bigquery.jobUser", "project"}, "the nightly job queries the day's rows"},
		{grant{"inventory-nightly", "roles/storage.objectAdmin", "bucket PROJECT-reports"}, "the nightly job writes the report"},
		{grant{"inventory-trigger", "projects/PROJECT/roles/inventoryFlexLauncher", "project"}, "the trigger launches the template and lists jobs"},
		{grant{"inventory-nightly", "roles/bigquery.dataEditor", "table daily_summary"}, "the nightly job loads the day's summary"},
		{grant{"inventory-nightly", "roles/bigquery.dataEditor", "table report_runs"}, "the nightly job records its run"},
		{grant{"inventory-stream", "roles/pubsub.subscriber", "subscription threshold-updates-sub"}, "the stream reads live threshold changes"},
		{grant{"operator", "roles/iam.serviceAccountTokenCreator", "service account inventory-scheduler"}, "the smoke test mints the Scheduler's ID token"},
		{grant{"inventory-trigger", "roles/iam.serviceAccountUser", "service account inventory-nightly"}, "the trigger launches as inventory-nightly"},
		{grant{"inventory-trigger", "roles/storage.objectViewer", "bucket PROJECT-dataflow-templates"}, "the launch reads the template spec"},
		{grant{"inventory-trigger", "roles/bigquery.jobUser", "project"}, "a backfill queries the first day with data"},
		{grant{"inventory-trigger", "roles/bigquery.dataViewer", "dataset inventory"}, "that query reads adjustments and daily_summary"},
		{grant{"inventory-deployer", "roles/storage.objectAdmin", "bucket PROJECT-dataflow-templates"}, "the build writes the template specs"},
	} {
		if !granted[need.grant] {
			t.Errorf("iam.sh does not grant %v: %s", need.grant, need.why)
		}
	}

	// Narrow (issue 26, item 9): no project-wide admin roles for the
	// deployer, no dataflow.developer for the trigger, no dataset-wide
	// writes for the nightly job, no shared staging bucket.
	for g := range granted {
		switch {
		case g.Role == "roles/run.admin" || g.Role == "roles/cloudscheduler.admin" || g.Role == "roles/dataflow.developer" || g.Role == "roles/dataflow.admin":
			t.Errorf("%v: a custom role with what the account calls, instead", g)
		case g.Account == "inventory-nightly" && g.On == "dataset inventory" && g.Role != "roles/bigquery.dataViewer":
			t.Errorf("%v: the nightly job writes only daily_summary and report_runs (table grants)", g)
		}
	}
	staging := map[string]string{}
	for g := range granted {
		if strings.HasPrefix(g.On, "bucket PROJECT-dataflow-") && g.Role == "roles/storage.objectAdmin" && g.Account != "inventory-deployer" {
			if other, ok := staging[g.On]; ok && other != g.Account {
				t.Errorf("%s and %s share the staging bucket %s", other, g.Account, g.On)
			}
			staging[g.On] = g.Account
		}
	}
	roles := scriptCustomRoles(t, script)
	launcher := roles["inventoryFlexLauncher"].permissions
	for _, p := range []string{"dataflow.jobs.create", "dataflow.jobs.get", "dataflow.jobs.list"} {
		if !slices.Contains(launcher, p) {
			t.Errorf("inventoryFlexLauncher lacks %s, which the trigger calls", p)
		}
	}
	for _, p := range launcher {
		if p == "dataflow.jobs.cancel" || p == "dataflow.jobs.updateContents" || !strings.HasPrefix(p, "dataflow.jobs.") {
			t.Errorf("inventoryFlexLauncher has %s: the trigger only launches and looks jobs up", p)
		}
	}
	for _, p := range roles["inventoryDeployer"].permissions {
		if strings.HasSuffix(p, ".delete") || strings.HasPrefix(p, "resourcemanager.") || strings.HasPrefix(p, "iam.") {
			t.Errorf("inventoryDeployer has %s", p)
		}
	}
	for id, r := range roles {
		if !strings.Contains(doc, "`"+id+"`") {
			t.Errorf("README does not name the custom role %s", id)
		}
		for _, p := range r.permissions {
			short := p[strings.LastIndex(p, ".")+1:]
			if !strings.Contains(doc, "`"+p+"`") && !strings.Contains(doc, "`"+short+"`") {
				t.Errorf("README's list of %s lacks %s", id, p)
			}
		}
	}

	// The template specs' bucket: the jobs' accounts may not write there.
	for g := range granted {
		if g.On == "bucket PROJECT-dataflow-templates" && (g.Account == "inventory-stream" || g.Account == "inventory-nightly") {
			t.Errorf("%v: a job's account must not have a role on the template specs' bucket", g)
		}
	}
}

func TestNoSecrets(t *testing.T) {
	secret := regexp.MustCompile(`(?i)(-----BEGIN [A-Z ]*PRIVATE KEY-----|"private_key"|client_secret|AIza[0-9A-Za-z_\-]{35}|service-accounts keys create|GOOGLE_APPLICATION_CREDENTIALS=)`)
	for _, dir := range []string{"deploy", "cmd/trigger", "reports/trigger"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, "deploy_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if m := secret.Find(b); m != nil {
				t.Errorf("%s contains %q", path, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
