// Package deploy_test checks the deployment files against each other and
// against the code: Dockerfiles build the main packages the Makefile builds,
// the Flex Template metadata names flags the jobs define, cloudbuild.yaml
// builds what it pushes and configures the trigger with the variables it
// reads, the service accounts of iam.md are the ones iam.sh creates, and no
// secret is in the repository's deployment files.
package deploy_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

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

func expand(s string, args map[string]string) string {
	return os.Expand(s, func(k string) string { return args[k] })
}

// goFiles returns the non-test Go files of dir (relative to the root).
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
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
			if !strings.Contains(d.text, "GOOS=linux GOARCH=amd64") {
				t.Error("binary must be built for linux/amd64 (Dataflow workers, Cloud Run)")
			}
			final := d.froms[len(d.froms)-1]
			switch job {
			case "trigger":
				if !strings.HasPrefix(final, "gcr.io/distroless/static") || d.user == "" || !strings.Contains(d.user, "nonroot") {
					t.Errorf("trigger runtime %s as user %q, want distroless static as nonroot", final, d.user)
				}
				if !strings.Contains(d.text, "CGO_ENABLED=0") {
					t.Error("trigger must be static (CGO_ENABLED=0) for distroless/static")
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
	if !slices.Contains(deployArgs, "--no-invoker-iam-check") {
		t.Error("the trigger verifies tokens itself: Cloud Run's invoker check would strip their signatures")
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

func TestIAM(t *testing.T) {
	doc, script := read(t, "deploy/iam.md"), read(t, "deploy/iam.sh")
	_, build := readCloudbuild(t)

	inDoc := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(inventory-[a-z-]+)`").FindAllStringSubmatch(doc, -1) {
		inDoc[m[1]] = true
	}
	created := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^ensure_sa (inventory-[a-z-]+)`).FindAllStringSubmatch(script, -1) {
		created[m[1]] = true
	}
	if len(inDoc) < 5 || !maps.Equal(inDoc, created) {
		t.Errorf("iam.md accounts %v, iam.sh creates %v", slices.Sorted(maps.Keys(inDoc)), slices.Sorted(maps.Keys(created)))
	}
	for _, m := range regexp.MustCompile(`(inventory-[a-z-]+)@`).FindAllStringSubmatch(build, -1) {
		if !created[m[1]] {
			t.Errorf("cloudbuild.yaml uses %s, which iam.sh does not create", m[1])
		}
	}
	docRoles := map[string]bool{}
	roleRE := regexp.MustCompile("`(roles/[A-Za-z.]+)`")
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue // the notes name operators' roles, not granted here
		}
		for _, m := range roleRE.FindAllStringSubmatch(line, -1) {
			docRoles[m[1]] = true
		}
	}
	scriptRoles := map[string]bool{}
	for _, m := range regexp.MustCompile(`roles/[A-Za-z.]+`).FindAllString(script, -1) {
		scriptRoles[m] = true
	}
	if !maps.Equal(docRoles, scriptRoles) {
		t.Errorf("roles in iam.md %v, in iam.sh %v", slices.Sorted(maps.Keys(docRoles)), slices.Sorted(maps.Keys(scriptRoles)))
	}
	for _, broad := range []string{"roles/owner", "roles/editor", "roles/viewer", "roles/iam.serviceAccountKeyAdmin"} {
		if scriptRoles[broad] || docRoles[broad] {
			t.Errorf("%s is not least privilege", broad)
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
