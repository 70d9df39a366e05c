package packaging_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// metricName finds hearth's series in a PromQL expression.
var metricName = regexp.MustCompile(`\bhearth_[a-z_]+\b`)

// declaredMetrics returns every "hearth_…" string literal of the
// repository's Go code outside tests: the names its metrics are declared
// with.
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	lit := regexp.MustCompile(`"(hearth_[a-z_]+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// used returns the hearth series of exprs, without histogram suffixes.
func used(exprs []string) map[string]bool {
	out := map[string]bool{}
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				n = strings.TrimSuffix(n, suf)
			}
			out[n] = true
		}
	}
	return out
}

func ruleExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("monitoring/hearth.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("a rule without alert or expr: %+v", r)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("monitoring/hearth-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// Ensure that every series the alert rules and the dashboard use is one
// hearth declares: a renamed metric must not silently disarm an alert.
func TestMonitoring_MetricsExist(t *testing.T) {
	declared := declaredMetrics(t)
	for file, exprs := range map[string][]string{"hearth.rules.yml": ruleExprs(t), "hearth-dashboard.json": dashboardExprs(t)} {
		names := used(exprs)
		if len(names) < 5 {
			t.Fatalf("%s uses only %v", file, names)
		}
		for n := range names {
			if !declared[n] {
				t.Errorf("%s uses %s, which no hearth metric is named", file, n)
			}
		}
	}
}

// Ensure that promtool accepts the rules (CI installs Debian's prometheus
// package for it; without promtool the test skips).
func TestMonitoring_Promtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HEARTH_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool not found; HEARTH_REQUIRE_PROMTOOL=1")
		}
		t.Skip("promtool not found (apt-get install prometheus): the rules were not checked")
	}
	if out, err := exec.Command(promtool, "check", "rules", "monitoring/hearth.rules.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
