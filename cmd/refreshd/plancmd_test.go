package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

// TestPlanAirflow is the dry run of the shipped Airflow plan: both instances, the steps known
// before the run with their exact commands, and which steps expand at run time from the
// Python versions the checkout defines (no version is written in the plan).
func TestPlanAirflow(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"plan", "--offline", "../../plans/airflow.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("refreshd plan: exit %d: %s", code, errb.String())
	}
	for _, line := range []string{
		"plan airflow/main (../../plans/airflow.yaml)",
		"plan airflow/v3-3-test (../../plans/airflow.yaml)",
		`params ref="v3-3-test" upgrade="true"`,
		"git fetch origin main from https://github.com/apache/airflow.git into /srv/airflow/main",
		"git fetch origin v3-3-test from https://github.com/apache/airflow.git into /srv/airflow/v3-3-test",
		"build-ci-images: from the values of checkout, python-versions (python, source)",
		"  refresh-cache: from the values of checkout, python-versions (python, source), matrix over python\n    once python-versions, tree-branch succeeded, skip step refresh-cache and what needs it if every one of these tags, for each python x platform,",
		"      ghcr.io/apache/airflow/<airflow_branch>/ci/python<python>:cache-<platform>",
		"  install-breeze: from the values of tree-branch (airflow_branch, constraints_branch)\n    expect {{ .vars.airflow_branch }} == {{ .instance }}, or fail unrun",
		"publish-constraints: from the values of tree-branch (airflow_branch, constraints_branch)",
		"verify-cache: from the values of python-versions, tree-branch (airflow_branch, constraints_branch, python), matrix over python x platform",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("dry run lacks %q", line)
		}
	}
	if strings.Contains(out.String(), "python3.1") {
		t.Error("dry run names a Python version: the plan must take them from the tree")
	}
	testkit.Golden(t, "testdata/plan-airflow.golden", out.String())
}

// TestPlanQuoting is the dry run of a plan whose values a shell would misread (a matrix value
// "3.9; rm -rf /tmp/x", a quote, an empty argument, a space in a path): every command, the
// buildx_cache build included, is printed shell-quoted exactly as it runs.
func TestPlanQuoting(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"plan", "testdata/plan-quoting.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("refreshd plan: exit %d: %s", code, errb.String())
	}
	for _, line := range []string{
		`$ sh -c 'echo "$1" $HOME' sh '3.9; rm -rf /tmp/x' 'it'\''s' ''`,
		`'--build-arg=PYTHON=3.9; rm -rf /tmp/x' `,
		`--metadata-file=STATE/runs/RUN/INSTANCE.json -- 'src dir'`,
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("dry run lacks %q", line)
		}
	}
	testkit.Golden(t, "testdata/plan-quoting.golden", out.String())
}

// TestPlanPool is the dry run of a builder with a pool: a pooled platform's build names the
// pool's nodes, their per-node builders and max_parallel, and builds through a per-node
// builder; a platform with one node builds through the builder by name, as before.
func TestPlanPool(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"plan", "testdata/plan-pool.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("refreshd plan: exit %d: %s", code, errb.String())
	}
	for _, line := range []string{
		"wait for a free slot of builder cache's linux/amd64 pool, first come first served: node cache0 (max_parallel 1) via builder cache.cache0, node cache2 (max_parallel 2) via builder cache.cache2",
		"$ docker buildx build --builder=cache.cache0 --platform=linux/amd64 ",
		"# given cache0; --builder=cache.cache2 on cache2",
		"check buildx.build.ref names the node given (cache0 or cache2)",
		"$ docker buildx build --builder=cache --platform=linux/arm64 ",
		"check buildx.build.ref names node cache1",
		"$ docker buildx ls --format json  # compare builder cache and its 2 pooled nodes' own builders with the plan",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("dry run lacks %q", line)
		}
	}
	testkit.Golden(t, "testdata/plan-pool.golden", out.String())
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"shipped", []string{"validate", "--offline", "--from", "2026-03-28T12:00:00Z", "../../plans"}, 0},
		{"bad", []string{"validate", "--offline", "--from", "2026-03-28T12:00:00Z", "../../plan/testdata/bad/many-errors.yaml", "../../plans/airflow.yaml"}, 2},
		{"usage", []string{"validate"}, 2},
		// Values rendered into image references, branch names and paths, per instance.
		{"rendered", []string{"validate", "--from", "2026-03-28T12:00:00Z", "testdata/rendered-values.yaml"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(tt.args, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d; want %d\n%s%s", code, tt.code, out.String(), errb.String())
			}
			if tt.name != "usage" {
				testkit.Golden(t, "testdata/validate-"+tt.name+".golden", out.String()+"--- stderr\n"+errb.String())
			}
		})
	}
}

func TestSchemaAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"schema"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"$schema": "https://json-schema.org/draft/2020-12/schema"`) {
		t.Errorf("schema: exit %d, %.80s", code, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "refreshd ") {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
}

// validate returns at once when a signal cancels its context, even while a plan file's read
// is stuck (a hung file system): the read's goroutine is left to the kernel.
func TestValidateStopsOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	stuck := make(chan struct{})
	defer close(stuck)
	done := make(chan error, 1)
	go func() {
		done <- validateUntilDone(ctx, func() error {
			load := planLoaders{dir: func(string) ([]*plan.Plan, error) { <-stuck; return nil, nil }}
			return validatePaths(load, []string{t.TempDir()}, time.Now(), io.Discard, io.Discard)
		})
	}()
	cancel(errors.New("terminated signal received"))
	select {
	case err := <-done:
		var errb bytes.Buffer
		if code := exitCode(io.Discard, &errb, err); code != exitInterrupted {
			t.Errorf("exit %d, want %d", code, exitInterrupted)
		}
		testkit.Golden(t, "testdata/validate-signal.golden", errb.String())
	case <-time.After(5 * time.Second):
		t.Fatal("validate did not return after its context was cancelled")
	}
}

// TestPlanOverlay: the shipped airflow plan, unchanged, against a staging repository and
// registry through --overlay and --var; the dry run lists every value not as the file says,
// and an overlay naming what the plan does not have fails with its place.
func TestPlanOverlay(t *testing.T) {
	dir := t.TempDir()
	overlay := dir + "/airflow.staging.yaml"
	writeFile(t, overlay, `overlay: airflow
vars: { registry: "localhost:5000" }
steps:
  checkout: { checkout: { repo: /srv/staging/airflow.git } }
`)
	var out, errb bytes.Buffer
	args := []string{"plan", "--offline", "--instance", "main", "--overlay", overlay, "--var", "platforms=linux/amd64", "../../plans/airflow.yaml"}
	if code := dispatch(args, &out, &errb); code != 0 {
		t.Fatalf("refreshd plan: exit %d: %s", code, errb.String())
	}
	for _, line := range []string{
		"overridden (3 values not as the plan file says):\n",
		"  vars.registry = localhost:5000  (" + overlay + ":2:9)\n",
		"  steps.checkout.checkout.repo = /srv/staging/airflow.git  (" + overlay + ":4:27)\n",
		"  vars.platforms = linux/amd64  (--var)\n",
		"git fetch origin main from /srv/staging/airflow.git into /srv/airflow/main",
		"      localhost:5000/apache/airflow/<airflow_branch>/ci/python<python>:cache-<platform>\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("dry run lacks %q:\n%s", line, out.String())
		}
	}
	writeFile(t, overlay, "overlay: airflow\nvars: { regsitry: x }\n")
	out.Reset()
	errb.Reset()
	if code := dispatch(args, &out, &errb); code == 0 || !strings.Contains(errb.String(), overlay+":2:9: overlay sets vars.regsitry, but the plan") {
		t.Errorf("bad overlay: exit %d, stderr %s", code, errb.String())
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPlanAirflowFull is the complete dry run of the shipped Airflow plan, one instance at a
// time, with the values its steps would read from that instance's tree given by --value:
// every step instance expands and shows its exact command (nothing is left to "expands at
// run time"), the tree's branch passes the instance's expect, and the cache tags and the
// constraints branch are the tree's.
func TestPlanAirflowFull(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		instance, constraints string
		lines                 []string
	}{
		{"main", "constraints-main", []string{
			"git push origin HEAD:refs/heads/constraints-main (never --force",
			"HEAD ghcr.io/apache/airflow/main/ci/python3.14:cache-linux-arm64  # must exist",
			`expect "main" == "main", or fail unrun`,
		}},
		{"v3-3-test", "constraints-3-3", []string{
			"git fetch origin v3-3-test from https://github.com/apache/airflow.git",
			"git push origin HEAD:refs/heads/constraints-3-3 (never --force",
			"        ghcr.io/apache/airflow/v3-3-test/ci/python3.10:cache-linux-amd64\n",
			`expect "v3-3-test" == "v3-3-test", or fail unrun`,
		}},
	} {
		t.Run(tc.instance, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := []string{"plan", "--offline", "--instance", tc.instance, "--value", "python=3.10,3.11,3.12,3.13,3.14",
				"--value", "airflow_branch=" + tc.instance, "--value", "constraints_branch=" + tc.constraints,
				"--value", "source.commit=" + commit, "../../plans/airflow.yaml"}
			if code := dispatch(args, &out, &errb); code != 0 {
				t.Fatalf("refreshd plan: exit %d: %s", code, errb.String())
			}
			text := out.String()
			for _, line := range append(tc.lines,
				"breeze ci-image build --run-in-parallel --python-versions '3.10 3.11 3.12 3.13 3.14' --commit-sha "+commit,
				"breeze testing core-tests --test-type Always --backend sqlite --python 3.14",
				"breeze ci-image build --builder airflow_cache --prepare-buildx-cache --platform linux/amd64,linux/arm64 --python 3.14 --commit-sha "+commit,
			) {
				if !strings.Contains(text, line) {
					t.Errorf("dry run lacks %q", line)
				}
			}
			for _, bad := range []string{"expands at run time", "does not hold", "<python>", "before run-time expansion"} {
				if strings.Contains(text, bad) {
					t.Errorf("dry run holds %q: a step did not expand", bad)
				}
			}
			testkit.Golden(t, "testdata/plan-airflow-"+tc.instance+"-full.golden", text)
		})
	}
	// The values are checked as the steps' outputs would be, and a wrong branch shows.
	var out, errb bytes.Buffer
	args := []string{"plan", "--offline", "--instance", "main", "--value", "python=3.12", "--value", "airflow_branch=v3-3-test",
		"--value", "constraints_branch=constraints-3-3", "../../plans/airflow.yaml"}
	if code := dispatch(args, &out, &errb); code != 0 || !strings.Contains(out.String(), `expect "v3-3-test" == "main", or fail unrun`) ||
		!strings.Contains(out.String(), "# does not hold with these values: the run would stop here") {
		t.Errorf("wrong tree: exit %d, %s", code, errb.String())
	}
	for _, bad := range [][]string{{"pyhton=3.12"}, {"python=3.12;rm"}, {"airflow_branch=main"}, {"airflow_branch=main", "constraints_branch=constraints-main", "python=2.7"}} {
		args := []string{"plan", "--offline"}
		for _, v := range bad {
			args = append(args, "--value", v)
		}
		errb.Reset()
		if code := dispatch(append(args, "../../plans/airflow.yaml"), io.Discard, &errb); code != 2 {
			t.Errorf("--value %v: exit %d (%s), want 2", bad, code, errb.String())
		}
	}
}

// TestPlanAirflowReleaseBranches: the shipped airflow plan, unchanged, against a remote
// (through an overlay on instances_from.repo) whose newest release branch is v3-4-test: it
// becomes an instance with the release schedule and its own ref, beside the written main
// and v3-3-test, with no edit of the plan; refreshd plan says what the listing chose. The
// remote is listed with git ls-remote from a real git daemon.
func TestPlanAirflowReleaseBranches(t *testing.T) {
	testkit.Need(t, "git")
	dir := t.TempDir()
	work, bare := dir+"/work", dir+"/airflow.git"
	testkit.Git(t, dir, "init", "--quiet", "--bare", bare)
	testkit.Git(t, dir, "init", "--quiet", "-b", "main", work)
	testkit.Git(t, work, "commit", "--quiet", "--allow-empty", "-m", "init")
	for _, b := range []string{"main", "v3-1-test", "v3-3-test", "v3-4-test", "v3-4-stable", "v2-11-test"} {
		testkit.Git(t, work, "push", "--quiet", bare, "HEAD:refs/heads/"+b)
	}
	url := testkit.ServeGitDaemon(t, bare)
	overlay := dir + "/airflow.staging.yaml"
	writeFile(t, overlay, "overlay: airflow\ninstances_from: { repo: \""+url+"\" }\n")
	var out, errb bytes.Buffer
	if code := dispatch([]string{"plan", "--overlay", overlay, "../../plans/airflow.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("refreshd plan: exit %d: %s", code, errb.String())
	}
	text := out.String()
	for _, line := range []string{
		"plan airflow/v3-4-test (../../plans/airflow.yaml)",
		"instances from the branches of " + url + " matching v[0-9]+-[0-9]+-test, newest 1: v3-4-test (4 matching, listed ",
		`params ref="v3-4-test" upgrade="true"`,
		`schedule "0 5 * * *" in UTC`,
		"git fetch origin v3-4-test from https://github.com/apache/airflow.git into /srv/airflow/v3-4-test",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("dry run lacks %q", line)
		}
	}
	var names []string
	for _, l := range strings.Split(text, "\n") {
		if name, ok := strings.CutPrefix(l, "plan "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	if strings.Join(names, " ") != "airflow/main airflow/v3-3-test airflow/v3-4-test" {
		t.Errorf("instances %v", names)
	}
	// The remote gone: the listing fails, the written instances stay, and the plan says why.
	os.RemoveAll(bare)
	out.Reset()
	if code := dispatch([]string{"plan", "--overlay", overlay, "../../plans/airflow.yaml"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "failed and none were listed before") || strings.Contains(out.String(), "plan airflow/v3-4-test") {
		t.Errorf("remote gone: exit %d, %s", code, out.String())
	}
}
