package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// stagedPlan is a plan whose versions step prints (or writes) emit, and whose build and
// publish-like steps expand from its values. Each build leaves a marker file, so a test
// sees what really ran.
func stagedPlan(t *testing.T, dir, from, emit string) *plan.Graph {
	t.Helper()
	write := `printf '%s' "$0"`
	if from != "stdout" {
		write = `mkdir -p out && printf '%s' "$0" > ` + from
	}
	src := fmt.Sprintf(`
plan: staged
workdir: %s
params:
  upgrade: { default: "true", values: ["true", "false"] }
steps:
  - id: versions
    run: [sh, -c, %q, %q]
    outputs: { from: %s, vars: { python: { pattern: '3\.[0-9]+' } } }
  - id: build
    needs: [versions]
    matrix: { python: "{{ .vars.python }}" }
    run: [sh, -c, 'touch "built-$0-$1"', "{{ .python }}", "{{ .params.upgrade }}"]
  - id: all
    needs: [build]
    run: [sh, -c, 'echo "$0" > all.txt', '{{ join .vars.python "," }}']
`, dir, "echo noise on stderr >&2; "+write, emit, from)
	plans, err := plan.ParsePlans(filepath.Join(dir, "staged.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	params, err := plans[0].ResolveParams(map[string]string{"upgrade": "false"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := plan.ExpandRun(plans[0], params)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func built(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "built-*"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

// TestStagesExpandFromValues: the values a step prints (stdout alone: its stderr is not
// parsed) or writes make the matrix it feeds, the run records them and its params, and the
// steps after the matrix see the whole list.
func TestStagesExpandFromValues(t *testing.T) {
	for _, from := range []string{"stdout", "out/vars.json"} {
		t.Run(strings.ReplaceAll(from, "/", "_"), func(t *testing.T) {
			e := newEngineT(t, 0)
			dir := t.TempDir()
			r := e.run(t, context.Background(), stagedPlan(t, dir, from, `{"python": ["3.11", "3.14"]}`))
			if r.Status != history.StatusSucceeded {
				t.Fatalf("run %s: %s", r.Status, r.Reason)
			}
			if got, want := built(t, dir), []string{"built-3.11-false", "built-3.14-false"}; !slices.Equal(got, want) {
				t.Errorf("built %q, want %q", got, want)
			}
			if data, _ := os.ReadFile(filepath.Join(dir, "all.txt")); string(data) != "3.11,3.14\n" {
				t.Errorf("all.txt %q", data)
			}
			var ids []string
			for _, s := range r.Steps {
				ids = append(ids, s.Instance+":"+string(s.Status))
			}
			want := []string{"versions:succeeded", "build[python=3.11]:succeeded", "build[python=3.14]:succeeded", "all:succeeded"}
			if !slices.Equal(ids, want) {
				t.Errorf("steps %q, want %q", ids, want)
			}
			if len(r.Vars) != 1 || r.Vars[0].Name != "python" || r.Vars[0].Step != "versions" || !slices.Equal(r.Vars[0].Values, []string{"3.11", "3.14"}) {
				t.Errorf("recorded vars %+v", r.Vars)
			}
			if r.Params["upgrade"] != "false" {
				t.Errorf("recorded params %v", r.Params)
			}
		})
	}
}

// TestStagesBadValuesFailBeforeAnyBuild: a value outside the rules fails the producing
// step, naming the var and the value; nothing that uses the values runs, and the record
// says why each was not run.
func TestStagesBadValuesFailBeforeAnyBuild(t *testing.T) {
	for _, tc := range []struct{ name, emit, want string }{
		{"option", `{"python": ["3.11", "--privileged"]}`, `var python: value 2: "--privileged": use letters`},
		{"pattern", `{"python": ["3.11", "2.7"]}`, `value 2: "2.7" does not match`},
		{"not json", `3.11 3.12`, "not a JSON object"},
		{"missing", `{"pythons": ["3.11"]}`, `no "python"`},
		{"empty", `{"python": []}`, "empty list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngineT(t, 0)
			dir := t.TempDir()
			r := e.run(t, context.Background(), stagedPlan(t, dir, "stdout", tc.emit))
			if r.Status != history.StatusFailed || !strings.Contains(r.Reason, "step versions failed") || !strings.Contains(r.Reason, tc.want) {
				t.Errorf("run %s: %q; want failed naming %q", r.Status, r.Reason, tc.want)
			}
			if b := built(t, dir); len(b) > 0 {
				t.Errorf("built %q after bad values", b)
			}
			for _, id := range []string{"build", "all"} {
				s := stepOf(t, r, id)
				if s.Status != history.StatusSkipped || !strings.Contains(s.Reason, "versions") {
					t.Errorf("step %s: %s %q", id, s.Status, s.Reason)
				}
			}
			if len(r.Vars) != 0 {
				t.Errorf("bad values recorded: %+v", r.Vars)
			}
		})
	}
}

// TestStagesTooManyInstancesFailsTheRun: values that would expand past the bound fail
// the run with the producer named, and nothing downstream starts.
func TestStagesTooManyInstancesFailsTheRun(t *testing.T) {
	e := newEngineT(t, 0)
	dir := t.TempDir()
	g := stagedPlan(t, dir, "stdout", `{"python": ["3.1"]}`)
	g.Plan.Steps[0].Outputs.Vars[0].MaxItems = plan.MaxInstances + 1
	var vals []string
	for i := range plan.MaxInstances + 1 {
		vals = append(vals, fmt.Sprintf(`"3.%d"`, i))
	}
	g.Plan.Steps[0].Run[3] = `{"python": [` + strings.Join(vals, ",") + `]}`
	g.Instances[0].Action.(*plan.RunAction).Argv[3] = g.Plan.Steps[0].Run[3]
	r := e.run(t, context.Background(), g)
	if r.Status != history.StatusFailed || !strings.Contains(r.Reason, "expand the steps that use the values of versions") {
		t.Errorf("run %s: %q", r.Status, r.Reason)
	}
	if s := stepOf(t, r, "build"); s.Status != history.StatusSkipped || !strings.Contains(s.Reason, "more than 10000 instances") {
		t.Errorf("build: %s %q", s.Status, s.Reason)
	}
}

// TestOutputsFileFollowsSecretRules: an outputs file is read by the rules of secret files
// and only inside the workdir. A FIFO (which hung the run for ever), a symlink to one, a
// symlink out of the workdir (absolute or by ..), a symlink to /dev/zero, a directory and a
// file past the size bound each fail the producing step at once, naming the file and why;
// nothing downstream runs. A symlink that stays inside the workdir is read.
func TestOutputsFileFollowsSecretRules(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "vars.json")
	if err := os.WriteFile(outside, []byte(`{"python": ["3.11"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, out string) // out is the outputs file's path
		want  string                         // "" for a run that succeeds
	}{
		{"fifo", func(t *testing.T, out string) { mkfifo(t, out) }, "out/vars.json: not a regular file (p---------)"},
		{"symlink to a fifo", func(t *testing.T, out string) {
			mkfifo(t, filepath.Join(filepath.Dir(out), "fifo"))
			symlink(t, "fifo", out)
		}, "out/vars.json: not a regular file (p---------)"},
		{"symlink out, absolute", func(t *testing.T, out string) { symlink(t, outside, out) }, "it leaves the workdir"},
		{"symlink out by ..", func(t *testing.T, out string) {
			rel, _ := filepath.Rel(filepath.Dir(out), outside)
			symlink(t, rel, out)
		}, "it leaves the workdir"},
		{"symlink to /dev/zero", func(t *testing.T, out string) { symlink(t, "/dev/zero", out) }, "it leaves the workdir"},
		{"directory", func(t *testing.T, out string) { os.Mkdir(out, 0o755) }, "not a regular file (d---------)"},
		{"huge", func(t *testing.T, out string) {
			f, err := os.Create(out)
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(8 << 30) // sparse: 8 GiB of nothing
			f.Close()
		}, "8589934592 bytes, more than outputs may hold (1048576)"},
		{"symlink inside", func(t *testing.T, out string) {
			os.WriteFile(filepath.Join(filepath.Dir(out), "real.json"), []byte(`{"python": ["3.11"]}`), 0o644)
			symlink(t, "real.json", out)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngineT(t, 0)
			dir := t.TempDir()
			g := stagedPlan(t, dir, "out/vars.json", "unused")
			g.Instances[0].Action.(*plan.RunAction).Argv = []string{"true"} // the file is the test's
			if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, filepath.Join(dir, "out", "vars.json"))
			start := time.Now()
			r := e.run(t, context.Background(), g)
			took := time.Since(start)
			if tc.want == "" {
				if r.Status != history.StatusSucceeded {
					t.Fatalf("run %s: %q", r.Status, r.Reason)
				}
				return
			}
			s := stepOf(t, r, "versions")
			if r.Status != history.StatusFailed || s.Status != history.StatusFailed || !strings.Contains(s.Reason, tc.want) {
				t.Errorf("run %s, step versions %s %q; want failed naming %q", r.Status, s.Status, s.Reason, tc.want)
			}
			if b := built(t, dir); len(b) > 0 {
				t.Errorf("built %q", b)
			}
			if took > 3*time.Second {
				t.Errorf("the run took %s", took)
			}
		})
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
