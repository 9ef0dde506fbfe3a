package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// rulesDir holds the shipped alerting rules and their promtool unit tests.
const rulesDir = "../../monitoring"

// TestAlertRules runs promtool's own checks on the shipped rules: they parse, and each
// alert fires when it should and not otherwise (a fresh skip keeps a plan from going
// stale; the first failure after a restart alerts; see refreshd.rules.test.yml).
func TestAlertRules(t *testing.T) {
	pt := testkit.Need(t, "promtool")[0] // evaluates 30 hours of rules: about 12 s
	for _, args := range [][]string{
		{"check", "rules", "refreshd.rules.yml"},
		{"test", "rules", "refreshd.rules.test.yml"},
	} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = rulesDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRulesUseExportedSeries checks that every refreshd_ series the rules and their
// tests name, with every label value they match on, is one the daemon really exports for a
// freshly loaded plan: rules on a renamed metric would never fire, and promtool's tests,
// which feed the series by hand, cannot see that.
func TestAlertRulesUseExportedSeries(t *testing.T) {
	m := New(BuildInfo{Version: "v1"})
	m.PlanKnown("p")
	m.LoadErrors(nil)
	m.CacheTags("p", 0, 0)
	m.PoolNodes([]PoolNode{{Builder: "b", Node: "n", Platform: "linux/amd64"}})
	m.WatchTagAges(func() ([]TagAge, error) {
		return []TagAge{{Plan: "p", Ref: "r:cache-linux-amd64", Changed: time.Now().Add(-time.Hour)}}, nil
	})
	body := scrape(t, m)
	exported := map[string]bool{}
	for line := range strings.Lines(body) {
		if !strings.HasPrefix(line, "refreshd_") {
			continue
		}
		name, labels, _ := strings.Cut(strings.Fields(line)[0], "{")
		exported[name] = true
		for _, kv := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(labels, -1) {
			exported[name+"/"+kv[1]+"="+kv[2]] = true
		}
	}
	series := regexp.MustCompile(`(refreshd_[a-z_]+)(\{[^}]*\})?`)
	for _, f := range []string{"refreshd.rules.yml", "refreshd.rules.test.yml"} {
		b, err := os.ReadFile(filepath.Join(rulesDir, f))
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, m := range series.FindAllStringSubmatch(string(b), -1) {
			found++
			if !exported[m[1]] {
				t.Errorf("%s: %s is not exported", f, m[1])
				continue
			}
			for _, kv := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
				switch kv[1] {
				case "job", "plan", "builder", "node", "platform", "ref":
					continue // set by Prometheus; any plan, builder or node
				}
				if !exported[m[1]+"/"+kv[1]+"="+kv[2]] {
					t.Errorf("%s: %s{%s=%q} is not exported for a loaded plan", f, m[1], kv[1], kv[2])
				}
			}
		}
		if found == 0 {
			t.Errorf("%s names no refreshd_ series", f)
		}
	}
}
