package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// dumpGraph prints a graph in a stable, reviewable form for golden files.
func dumpGraph(g *Graph) string {
	var b strings.Builder
	for _, in := range g.Instances {
		fmt.Fprintf(&b, "%s level=%d key=%s", in.ID, in.Level, in.ConcurrencyKey)
		if in.Builder != "" {
			fmt.Fprintf(&b, " builder=%s", in.Builder)
		}
		fmt.Fprintf(&b, " timeout=%s attempts=%d workdir=%s\n", in.Timeout, in.Retry.Attempts, in.Workdir)
		if len(in.Needs) > 0 {
			fmt.Fprintf(&b, "  needs %s\n", strings.Join(in.Needs, " "))
		}
		if s := in.Step; s != nil && (s.When != WhenSuccess || len(s.Secrets) > 0) {
			fmt.Fprintf(&b, "  when %s secrets %q\n", s.When, s.Secrets)
		}
		var env []string
		for k, v := range in.Env {
			env = append(env, k+"="+v)
		}
		slices.Sort(env)
		fmt.Fprintf(&b, "  env %q\n", env)
		for _, e := range in.Expects {
			fmt.Fprintf(&b, "  expect %q == %q\n", e.That, e.Equals)
		}
		switch a := in.Action.(type) {
		case *RunAction:
			fmt.Fprintf(&b, "  run %q\n", a.Argv)
			if a.JUnit != "" {
				fmt.Fprintf(&b, "  report junit %s\n", a.JUnit)
			}
		case *ProvisionAction:
			fmt.Fprintf(&b, "  provision %s (%d nodes)\n", a.Builder.Name, len(a.Builder.Nodes))
		case *BuildxCacheAction:
			fmt.Fprintf(&b, "  buildx_cache node=%s platform=%s context=%s file=%s target=%s args=%v ref=%s\n",
				a.Node, a.Platform, a.Context, a.File, a.Target, a.BuildArgs, a.CacheRef)
		case *PublishAction:
			fmt.Fprintf(&b, "  publish %s %s files=%s dir=%s token=%s author=%s <%s> attempts=%d\n",
				a.Repo, a.Branch, a.Files, a.Dir, a.Token, a.AuthorName, a.AuthorEmail, a.MaxAttempts)
		case *VerifyAction:
			fmt.Fprintf(&b, "  verify %q\n", a.Refs)
		case *CheckoutAction:
			fmt.Fprintf(&b, "  checkout %s %s path=%s token=%s keep=%q\n", a.Repo, a.Ref, a.Path, a.Token, a.Keep)
		default:
			fmt.Fprintf(&b, "  %s %+v\n", a.Kind(), a)
		}
	}
	return b.String()
}

// shippedCommit stands for the commit a shipped plan's checkout fetched.
const shippedCommit = "0123456789abcdef0123456789abcdef01234567"

// airflowPythons stands for what python-versions reads from an Airflow checkout.
var airflowPythons = []string{"3.10", "3.11", "3.12", "3.13", "3.14"}

// expandShipped expands the first plan of file; steps that expand at run time get the
// values a real run would read (airflowPythons), so the golden shows the whole graph.
func expandShipped(t *testing.T, file string) (*Plan, *Graph) {
	t.Helper()
	plans, err := LoadPlans(file)
	if err != nil {
		t.Fatal(err)
	}
	p := plans[0]
	g, err := Expand(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Steps {
		if s.Checkout != nil {
			if _, err := g.ExtendSource(s.ID, Source{Repo: "https://example.com/repo.git", Ref: "main", Commit: shippedCommit}); err != nil {
				t.Fatal(err)
			}
		}
		if s.Outputs != nil {
			// What the shipped plans' steps read from a tree of main.
			sample := map[string]Var{
				"python":             {List: airflowPythons, IsList: true},
				"airflow_branch":     {Scalar: "main"},
				"constraints_branch": {Scalar: "constraints-main"},
			}
			vals := map[string]Var{}
			for _, ov := range s.Outputs.Vars {
				v, ok := sample[ov.Name]
				if !ok {
					t.Fatalf("%s: no sample value for var %s of step %s", file, ov.Name, s.ID)
				}
				vals[ov.Name] = v
			}
			if _, err := g.Extend(s.ID, vals); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(g.Pending()) > 0 {
		t.Fatalf("%s: steps still pending: %v", file, g.Pending())
	}
	return p, g
}

func TestExpandGolden(t *testing.T) {
	for _, file := range []string{"testdata/full/full.yaml", "../plans/airflow.yaml", "../plans/buildx-example.yaml"} {
		t.Run(file, func(t *testing.T) {
			_, g := expandShipped(t, file)
			name := strings.TrimSuffix(file[strings.LastIndex(file, "/")+1:], ".yaml")
			testkit.Golden(t, "testdata/expand-"+name+".golden", dumpGraph(g))
		})
	}
}

// TestExpandProperties checks what the golden files show, independently of them.
func TestExpandProperties(t *testing.T) {
	p, err := LoadFile("testdata/full/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Expand(p)
	if err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]*Instance)
	pos := make(map[string]int)
	for i, in := range g.Instances {
		byID[in.ID] = in
		pos[in.ID] = i
	}
	for _, in := range g.Instances {
		for _, n := range in.Needs {
			dep, ok := byID[n]
			if !ok {
				t.Fatalf("%s needs unknown instance %s", in.ID, n)
			}
			if pos[n] >= pos[in.ID] || dep.Level >= in.Level {
				t.Errorf("%s (level %d) comes before or beside its need %s (level %d)", in.ID, in.Level, n, dep.Level)
			}
		}
	}
	// First axis slowest; a template value stays one argv element, however many spaces or
	// shell characters it has.
	var builds []string
	for _, in := range g.Instances {
		if in.Step != nil && in.Step.ID == "build" {
			builds = append(builds, in.ID)
			argv := in.Action.(*RunAction).Argv
			if len(argv) != 4 || argv[1] != "hello world; rm -rf /" {
				t.Errorf("%s argv = %q; want 4 elements with the greeting as one", in.ID, argv)
			}
		}
	}
	want := []string{"build[python=3.11,flavour=slim]", "build[python=3.11,flavour=full]", "build[python=3.12,flavour=slim]", "build[python=3.12,flavour=full]"}
	if !slices.Equal(builds, want) {
		t.Errorf("build instances %q; want %q", builds, want)
	}
	// publish needs every build instance; cache instances need publish and the provision.
	if got := byID["publish"].Needs; len(got) != 4 {
		t.Errorf("publish needs %q; want the 4 build instances", got)
	}
	c := byID["cache[python=3.11][linux/arm/v7]"]
	if c == nil {
		t.Fatalf("no cache[python=3.11][linux/arm/v7] instance; have %q", slices.Collect(func(yield func(string) bool) {
			for _, in := range g.Instances {
				if !yield(in.ID) {
					return
				}
			}
		}))
	}
	a := c.Action.(*BuildxCacheAction)
	if a.Node != "shared1" || a.CacheRef != "127.0.0.1:5000/full/python3.11:cache-linux-arm-v7" || c.ConcurrencyKey != "cache[linux/arm/v7]" {
		t.Errorf("cache instance: node %s ref %s key %s", a.Node, a.CacheRef, c.ConcurrencyKey)
	}
	if !slices.Contains(c.Needs, "provision[shared]") || !slices.Contains(c.Needs, "publish") {
		t.Errorf("cache needs %q; want publish and provision[shared]", c.Needs)
	}
}

func TestLoadDirShared(t *testing.T) {
	plans, err := LoadDir("testdata/conflict")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("LoadDir error %v; want an ErrorList", err)
	}
	var names []string
	for _, p := range plans {
		names = append(names, p.Name)
	}
	// alpha and delta agree on builder cache; beta defines it differently; c.yaml reuses
	// the name alpha. The valid plans are still returned.
	if !slices.Equal(names, []string{"alpha", "delta"}) {
		t.Errorf("valid plans %q; want [alpha delta]", names)
	}
	testkit.Golden(t, "testdata/conflict.err", err.Error()+"\n")
}

func TestShippedPlans(t *testing.T) {
	plans, err := LoadDir("../plans")
	if err != nil {
		t.Fatalf("shipped plans must load: %v", err)
	}
	if len(plans) < 2 {
		t.Fatalf("only %d shipped plans", len(plans))
	}
	// Airflow's procedure: instances for main and the release branch, Python versions from
	// the tree, the wheels before the PyPI constraints mode, a gate before publishing.
	var names []string
	for _, q := range plans {
		if q.Base == "airflow" {
			names = append(names, q.Name)
		}
	}
	if !slices.Equal(names, []string{"airflow/main", "airflow/v3-3-test"}) {
		t.Errorf("airflow instances %q", names)
	}
	p, g := expandShipped(t, "../plans/airflow.yaml")
	var lines []string
	for _, in := range g.Instances {
		if r, ok := in.Action.(*RunAction); ok && strings.HasPrefix(r.Argv[0], "breeze") {
			lines = append(lines, strings.Join(r.Argv, " "))
		}
	}
	// What CI runs (the h-airflow reading of breeze, workflows and dev/refresh_images.sh):
	// the source-providers and no-providers modes before the wheels, no --skip-tag-check,
	// the PyPI mode from the wheels, the images labelled with the source commit.
	const commit = shippedCommit
	want := []string{
		"breeze ci-image build --run-in-parallel --python-versions 3.10 3.11 3.12 3.13 3.14 --commit-sha " + commit,
		"breeze release-management generate-constraints --airflow-constraints-mode constraints-source-providers --python-versions 3.10 3.11 3.12 3.13 3.14 --run-in-parallel",
		"breeze release-management generate-constraints --airflow-constraints-mode constraints-no-providers --python-versions 3.10 3.11 3.12 3.13 3.14 --run-in-parallel",
		"breeze release-management prepare-provider-distributions --include-not-ready-providers --distribution-format wheel",
		"breeze release-management prepare-airflow-distributions --distribution-format wheel",
		"breeze release-management prepare-task-sdk-distributions --distribution-format wheel",
		"breeze release-management generate-constraints --airflow-constraints-mode constraints --python-versions 3.10 3.11 3.12 3.13 3.14 --run-in-parallel",
	}
	// The test gate, per Python, before anything is published.
	for _, py := range airflowPythons {
		want = append(want, "breeze testing core-tests --test-type Always --backend sqlite --python "+py)
	}
	for _, py := range airflowPythons {
		want = append(want, "breeze ci-image build --builder airflow_cache --prepare-buildx-cache --platform linux/amd64,linux/arm64 --python "+py+" --commit-sha "+commit)
	}
	if !slices.Equal(lines, want) {
		t.Errorf("airflow breeze lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Publish waits for the gate of every Python, whose report names the failing tests.
	for _, in := range g.Instances {
		if _, ok := in.Action.(*PublishAction); ok {
			for _, py := range airflowPythons {
				if !slices.Contains(in.Needs, "test-gate[python="+py+"]") {
					t.Errorf("publish needs %q, not test-gate[python=%s]", in.Needs, py)
				}
			}
		}
		if r, ok := in.Action.(*RunAction); ok && in.Step.ID == "test-gate" && r.JUnit != "files/test_result-always-sqlite.xml" {
			t.Errorf("%s report %q", in.ID, r.JUnit)
		}
	}
	// No warning but that the test did not list the remote's branches (no lister here).
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].Msg, "instances_from: the branches of https://github.com/apache/airflow.git were not listed") {
		t.Errorf("airflow warnings: %v", p.Warnings)
	}
	var refs []string
	for _, in := range g.Instances {
		if v, ok := in.Action.(*VerifyAction); ok {
			refs = append(refs, v.Refs...)
		}
	}
	if len(refs) != 10 || refs[0] != "ghcr.io/apache/airflow/main/ci/python3.10:cache-linux-amd64" || refs[9] != "ghcr.io/apache/airflow/main/ci/python3.14:cache-linux-arm64" {
		t.Errorf("verified refs %q", refs)
	}
	// Freshness over every cache tag of every Python of the tree, decided once the tree
	// gave its versions: the refs are exactly the ones verify-cache checks. It is
	// refresh-cache's, never the plan's: fresh caches say nothing about constraints.
	conds := p.SkipConditions()
	if len(p.SkipIf) != 0 || len(conds) != 1 || conds[0].Step != "refresh-cache" || conds[0].Tags == nil || !slices.Equal(conds[0].Tags.After, []string{"python-versions", "tree-branch"}) {
		t.Fatalf("airflow skip_if %+v; want one tags condition of refresh-cache decided after python-versions and tree-branch", conds)
	}
	watched, ready, err := g.SkipTagRefs(conds[0])
	if err != nil || !ready || !slices.Equal(watched, refs) {
		t.Errorf("skip_if watches %q (ready %v, err %v); want the verified refs %q", watched, ready, err, refs)
	}
	b := p.Builders["airflow_cache"]
	if b == nil || len(b.Nodes) != 2 || b.Nodes[0].Endpoint != "unix:///var/run/docker.sock" || b.Nodes[1].Platform != "linux/arm64" {
		t.Errorf("airflow_cache builder %+v", b)
	}
}

func TestNextRuns(t *testing.T) {
	tests := []struct {
		schedule, tz, from string
		want               []string
	}{
		{"0 2 * * *", "UTC", "2026-03-01T12:00:00Z", []string{"2026-03-02T02:00:00Z", "2026-03-03T02:00:00Z", "2026-03-04T02:00:00Z"}},
		{"@nightly", "Europe/Berlin", "2026-03-28T12:00:00Z", []string{"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"}},
		{"30 0 0 * * *", "UTC", "2026-03-01T00:00:00Z", []string{"2026-03-01T00:00:30Z", "2026-03-02T00:00:30Z", "2026-03-03T00:00:30Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			src := fmt.Sprintf("plan: p\nschedule: %q\ntimezone: %s\nsteps:\n  - { id: a, run: [\"true\"] }\n", tt.schedule, tt.tz)
			p, err := Parse("p.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			from, _ := time.Parse(time.RFC3339, tt.from)
			var got []string
			for _, r := range p.NextRuns(from, 3) {
				got = append(got, r.Format(time.RFC3339))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("NextRuns = %q; want %q", got, tt.want)
			}
		})
	}
}
