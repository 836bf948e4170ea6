package deploy_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dashboard is the part of a Cloud Monitoring Dashboard resource that the
// files of deploy/monitoring/dashboards use; unknown fields fail the test.
type dashboard struct {
	DisplayName  string `json:"displayName"`
	MosaicLayout struct {
		Columns int `json:"columns"`
		Tiles   []struct {
			XPos   int `json:"xPos"`
			YPos   int `json:"yPos"`
			Width  int `json:"width"`
			Height int `json:"height"`
			Widget struct {
				Title   string `json:"title"`
				XYChart struct {
					DataSets []struct {
						TimeSeriesQuery struct {
							TimeSeriesFilter *struct {
								Filter      string `json:"filter"`
								Aggregation struct {
									AlignmentPeriod    string   `json:"alignmentPeriod"`
									PerSeriesAligner   string   `json:"perSeriesAligner"`
									CrossSeriesReducer string   `json:"crossSeriesReducer"`
									GroupByFields      []string `json:"groupByFields"`
								} `json:"aggregation"`
							} `json:"timeSeriesFilter"`
							PrometheusQuery string `json:"prometheusQuery"`
						} `json:"timeSeriesQuery"`
						PlotType string `json:"plotType"`
					} `json:"dataSets"`
					YAxis struct {
						Label string `json:"label"`
						Scale string `json:"scale"`
					} `json:"yAxis"`
				} `json:"xyChart"`
			} `json:"widget"`
		} `json:"tiles"`
	} `json:"mosaicLayout"`
}

// dashboardFiles are the dashboards the runbook creates.
func dashboardFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "deploy", "monitoring", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("deploy/monitoring/dashboards: %v %v", files, err)
	}
	return files
}

// TestDashboards reads deploy/monitoring/dashboards/*.json as Cloud
// Monitoring dashboards: every chart names one metric type of knownMetrics,
// the Beam counters by names the job declares, and the runbook creates
// each file.
func TestDashboards(t *testing.T) {
	runbook := read(t, "deploy/README.md")
	for _, f := range dashboardFiles(t) {
		rel, _ := filepath.Rel(root, f)
		if !strings.Contains(runbook, "--config-from-file="+filepath.ToSlash(rel)) {
			t.Errorf("the runbook does not create the dashboard %s (gcloud monitoring dashboards create --config-from-file=%s)", rel, rel)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: not a dashboard this test knows: %v", rel, err)
		}
		if d.DisplayName == "" || len(d.MosaicLayout.Tiles) == 0 {
			t.Fatalf("%s: a dashboard needs a name and tiles", rel)
		}
		for _, tile := range d.MosaicLayout.Tiles {
			w := tile.Widget
			if w.Title == "" || len(w.XYChart.DataSets) == 0 || tile.XPos+tile.Width > d.MosaicLayout.Columns {
				t.Errorf("%s: widget %q needs a title, a data set, and to fit in %d columns", rel, w.Title, d.MosaicLayout.Columns)
			}
			for _, ds := range w.XYChart.DataSets {
				q := ds.TimeSeriesQuery
				var text string
				switch {
				case q.TimeSeriesFilter != nil:
					text = q.TimeSeriesFilter.Filter
				case q.PrometheusQuery != "":
					text = q.PrometheusQuery
				default:
					t.Errorf("%s: widget %q has a data set without a query", rel, w.Title)
				}
				if types := metricTypesIn(text); len(types) != 1 {
					t.Errorf("%s: widget %q names %v; want one metric type of knownMetrics", rel, w.Title, types)
				}
			}
		}
		checkUserCounters(t, string(b))
	}
}

// dashboardMetrics returns the metric types the dashboards chart.
func dashboardMetrics(t *testing.T) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	for _, f := range dashboardFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricTypesIn(string(b)) {
			used[m] = true
		}
	}
	return used
}

// metricTypesIn returns the metric types of knownMetrics that a filter
// (metric.type = "...") or a PromQL query (domain:path{...}) names, and the
// unknown ones a filter names.
func metricTypesIn(text string) []string {
	var types []string
	for _, m := range regexp.MustCompile(`metric\.type\s*=\s*\\?"([^"\\]+)\\?"`).FindAllStringSubmatch(text, -1) {
		types = append(types, m[1])
	}
	for m := range knownMetrics {
		if strings.Contains(text, promQLName(m)+"{") {
			types = append(types, m)
		}
	}
	return types
}

// checkUserCounters checks that every Beam counter a monitoring file names
// (metric_name="X", metric_name=~"X|Y", metric.labels.metric_name = "X") is
// one the streaming job's code declares (userCounters).
func checkUserCounters(t *testing.T, text string) {
	t.Helper()
	if !strings.Contains(text, userCounter) && !strings.Contains(text, promQLName(userCounter)) {
		return
	}
	declared := userCounters(t)
	re := regexp.MustCompile(`metric(?:\.labels\.|_)name\s*(=~|=)\s*\\?"([^"\\]+)\\?"`)
	found := re.FindAllStringSubmatch(text, -1)
	if len(found) == 0 {
		t.Errorf("a file charts %s without naming the counter (metric_name)", userCounter)
	}
	for _, m := range found {
		for _, name := range strings.Split(m[2], "|") {
			if !declared[name] {
				t.Errorf("%s names the counter %q, which the job's code does not declare (beam.NewCounter in transforms/, loaders/, pipelines/)", userCounter, name)
			}
		}
	}
}

// userCounters returns the names of the Beam counters the job's code
// declares: the second argument of every beam.NewCounter call under
// transforms/, loaders/ and pipelines/, a string literal or a constant of
// the package (such as commit.MetricReceived), resolved from the code.
func userCounters(t *testing.T) map[string]bool {
	t.Helper()
	consts := map[string]string{}  // "pkg.Name" -> value
	aliases := map[string]string{} // "pkg.Name" -> "other.Name" (a constant defined as another package's)
	var calls []*ast.CallExpr
	var callPkg []string
	fset := token.NewFileSet()
	for _, top := range []string{"transforms", "loaders", "pipelines"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			pkg := f.Name.Name
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.ValueSpec:
					for i, id := range n.Names {
						if i < len(n.Values) {
							switch v := n.Values[i].(type) {
							case *ast.BasicLit:
								if v.Kind == token.STRING {
									s, _ := strconv.Unquote(v.Value)
									consts[pkg+"."+id.Name] = s
								}
							case *ast.SelectorExpr:
								if x, ok := v.X.(*ast.Ident); ok {
									aliases[pkg+"."+id.Name] = x.Name + "." + v.Sel.Name
								}
							}
						}
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewCounter" && len(n.Args) == 2 {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == "beam" {
							calls = append(calls, n)
							callPkg = append(callPkg, pkg)
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for a, target := range aliases {
		if v, ok := consts[target]; ok {
			consts[a] = v
		}
	}
	names := map[string]bool{}
	for i, c := range calls {
		switch a := c.Args[1].(type) {
		case *ast.BasicLit:
			v, _ := strconv.Unquote(a.Value)
			names[v] = true
		case *ast.Ident:
			if v, ok := consts[callPkg[i]+"."+a.Name]; ok {
				names[v] = true
			}
		case *ast.SelectorExpr:
			if x, ok := a.X.(*ast.Ident); ok {
				if v, ok := consts[x.Name+"."+a.Sel.Name]; ok {
					names[v] = true
				}
			}
		}
	}
	for _, want := range []string{"received", "dead_lettered", "alerts", "commits"} {
		if !names[want] {
			t.Fatalf("found no beam.NewCounter of %q in the job's code: the parser missed it (found %v)", want, names)
		}
	}
	return names
}
