package airflow

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/teststack"
)

var refreshd testkit.Refreshd

func TestMain(m *testing.M) { os.Exit(refreshd.Main(m)) }

// box is one build box set up the way docs/airflow.md says, on the demo stack:
// a docker config with the compose plugin and a login for the registry, the two tokens as
// systemd credentials, uv on PATH, the shipped plan with the site's builders file and the
// staging overlay beside it, and the Airflow-shaped repository it refreshes.
type box struct {
	t      *testing.T
	stack  *teststack.Demo
	dir    string // the box's root: work, tools, state, plans, credentials
	repo   string // the bare Airflow-shaped repository (sources and constraints branches)
	plans  string
	state  string
	creds  string
	api    *githubAPI
	login  string // the registry's entry in config.json, as the box's operator wrote it
	output string // what the last night's refreshd printed (its log)
}

const readToken = "github_pat_read_only_e2e" // the GITHUB_TOKEN generation steps get

func (b *box) registry() string     { return b.stack.Env["REGISTRY"] }
func (b *box) dockerConfig() string { return b.stack.Env["DOCKER_CONFIG"] }

// TestAirflowPlanNights runs the shipped plans/airflow.yaml itself, unchanged, five nights in
// a row on the real stack against an Airflow-shaped repository and a breeze stand-in
// (e2e/airflow/tree); the only differences from production come from a staging overlay and
// the box's own files (docs/airflow.md, "Setting up the build box"; docs/plans.md, "Staging runs").
//
//  1. First refresh: breeze's docker context of the builder's name is already there (the
//     release engineer ran breeze by hand): provisioning clears it; the constraints are
//     generated with the read-only token, tested, published; every cache tag is pushed and
//     verified.
//  2. Cached night: the cache steps are skipped by their own skip_if (the tags are fresh),
//     the constraints work is still done; nothing changed but headers, so nothing is pushed.
//  3. An upstream release breaks a test: the gate fails naming the test, nothing is
//     published, the caches are not touched.
//  4. The release branch's first night (airflow/v3-3-test), with breeze's context left in
//     use: its constraints branch and cache path come from its tree; provisioning and the
//     cache builds go through.
//  5. airflow/main run by hand from the release branch's tree (--param ref=v3-3-test): the
//     tree's AIRFLOW_BRANCH is not the instance's; refused before breeze is installed.
//
// Then v3-4-test is cut and the plan has an instance for it without an edit.
//
// Provisioning runs every night, with breeze's context of the builder's name around.
// Throughout: no unauthenticated request reaches the GitHub API stand-in (which answers those
// with 403, as api.github.com does past 60 an hour), and no image build step ever saw the
// token (breeze would have logged in to the registry with it).
func TestAirflowPlanNights(t *testing.T) {
	testkit.Need(t, "python3", "diff")
	b := setUp(t)

	// The dry run shows the overlay's values, where they came from.
	out := b.refreshd("plan", "--instance", "main", b.plan())
	for _, want := range []string{"steps.checkout.checkout.repo = " + b.repo, "vars.registry = " + b.registry()} {
		if !strings.Contains(out, want) {
			t.Errorf("refreshd plan lacks %q:\n%s", want, out)
		}
	}

	// Night 1.
	mainBefore := b.branchHead("constraints-main")
	run := b.night(1)
	if run.Status != history.StatusSucceeded {
		b.fatalRun(run, "night 1: want succeeded")
	}
	if got := b.branchHead("constraints-main"); got == mainBefore {
		t.Errorf("night 1 published nothing to constraints-main")
	}
	for _, f := range []string{"constraints-3.11.txt", "constraints-source-providers-3.12.txt", "constraints-no-providers-3.11.txt"} {
		if content := b.show("constraints-main", f); !strings.Contains(content, "# This constraints file was automatically generated on") || !strings.Contains(content, "apache-airflow-providers-") && strings.HasPrefix(f, "constraints-3") {
			t.Errorf("constraints-main:%s is not a whole constraints file:\n%s", f, content)
		}
	}
	digests := map[string]string{}
	for _, py := range []string{"3.11", "3.12"} {
		for _, p := range []string{"linux-amd64", "linux-386"} {
			ref := fmt.Sprintf("%s/apache/airflow/main/ci/python%s:cache-%s", b.registry(), py, p)
			if digests[ref] = b.digest(ref); digests[ref] == "" {
				t.Errorf("night 1: cache tag %s missing", ref)
			}
		}
	}
	b.wantSteps(run, map[string]history.Status{
		"provision[airflow_cache]": history.StatusSucceeded,
		"preflight":                history.StatusSucceeded, "test-gate[python=3.11]": history.StatusSucceeded,
		"refresh-cache[python=3.12]": history.StatusSucceeded, "verify-cache[python=3.12,platform=linux/386]": history.StatusSucceeded,
		"publish-constraints": history.StatusSucceeded,
	})
	// Provisioning cleared breeze's context (a copy of the default one) before creating the
	// builder, in its own attempt log; breeze's refresh-cache made it again, in use.
	if !strings.Contains(b.output, "change=rm-context") || !strings.Contains(b.output, "change=create") {
		t.Errorf("night 1: provisioning did not remove breeze's context, then create the builder:\n%s", b.output)
	}
	if cur := b.currentContext(); cur != "airflow_cache" {
		t.Errorf("after night 1 docker's current context is %q, want breeze's airflow_cache", cur)
	}

	// Night 2: nothing new upstream; the cache is fresh.
	head := b.branchHead("constraints-main")
	run = b.night(2)
	if run.Status != history.StatusSucceeded {
		b.fatalRun(run, "night 2: want succeeded")
	}
	b.wantSteps(run, map[string]history.Status{
		"provision[airflow_cache]":   history.StatusSucceeded,
		"refresh-cache[python=3.11]": history.StatusSkipped, "verify-cache[python=3.11,platform=linux/amd64]": history.StatusSkipped,
		"generate-constraints[mode=constraints-no-providers]": history.StatusSucceeded,
		"test-gate[python=3.12]":                              history.StatusSucceeded, "publish-constraints": history.StatusSucceeded,
	})
	if !slices.ContainsFunc(run.Freshness, func(f history.Freshness) bool { return f.Step != "" && f.Fresh }) {
		t.Errorf("night 2: no step-level skip_if held: %+v", run.Freshness)
	}
	if got := b.branchHead("constraints-main"); got != head {
		t.Errorf("night 2 pushed %s to constraints-main with only headers changed", got)
	}
	for ref, d := range digests {
		if got := b.digest(ref); got != d {
			t.Errorf("night 2 changed %s: %s -> %s", ref, d, got)
		}
	}

	// Night 3: an upstream release the tests reject.
	b.commit("main", "index: httpx 1.0.0", func(dir string) {
		appendLine(t, filepath.Join(dir, "index", "packages.txt"), "httpx                     1.0.0")
	})
	run = b.night(3)
	if run.Status != history.StatusFailed {
		b.fatalRun(run, "night 3: want failed")
	}
	if !strings.Contains(run.Reason, "test_httpx_below_1") {
		t.Errorf("night 3 reason %q does not name the failing test", run.Reason)
	}
	b.wantSteps(run, map[string]history.Status{
		"provision[airflow_cache]": history.StatusSucceeded,
		"test-gate[python=3.11]":   history.StatusFailed, "publish-constraints": history.StatusSkipped,
	})
	if got := b.branchHead("constraints-main"); got != head {
		t.Errorf("night 3 published %s after a failed test", got)
	}
	for ref, d := range digests {
		if got := b.digest(ref); got != d {
			t.Errorf("night 3 changed %s: %s -> %s", ref, d, got)
		}
	}

	// The release branch's first night, with breeze's context left in use by main's nights:
	// its constraints branch and cache path come from its tree (constraints-3-3,
	// .../v3-3-test/ci), and the cache builds go through the same builder.
	releaseBefore := b.branchHead("constraints-3-3")
	run = b.nightOf("v3-3-test", 4)
	if run.Status != history.StatusSucceeded {
		b.fatalRun(run, "night 4 (v3-3-test): want succeeded")
	}
	b.wantSteps(run, map[string]history.Status{
		"provision[airflow_cache]": history.StatusSucceeded, "refresh-cache[python=3.12]": history.StatusSucceeded,
		"publish-constraints": history.StatusSucceeded,
	})
	if b.branchHead("constraints-3-3") == releaseBefore {
		t.Errorf("night 4 published nothing to constraints-3-3")
	}
	if b.branchHead("constraints-main") != head {
		t.Errorf("night 4 (v3-3-test) moved constraints-main")
	}
	for _, py := range []string{"3.11", "3.12"} {
		if ref := fmt.Sprintf("%s/apache/airflow/v3-3-test/ci/python%s:cache-linux-386", b.registry(), py); b.digest(ref) == "" {
			t.Errorf("night 4: cache tag %s missing", ref)
		}
	}

	// A manual run of airflow/main from the release branch's tree is refused before anything
	// is built: the tree's AIRFLOW_BRANCH is not the instance's.
	run = b.night(5, "--param", "ref=v3-3-test")
	if run.Status != history.StatusFailed || !strings.Contains(run.Reason, `"v3-3-test", want "main"`) {
		b.fatalRun(run, "night 5 (airflow/main from v3-3-test): want failed naming both branches")
	}
	b.wantSteps(run, map[string]history.Status{"install-breeze": history.StatusFailed, "publish-constraints": history.StatusSkipped})
	if b.branchHead("constraints-main") != head || b.branchHead("constraints-3-3") == releaseBefore {
		t.Errorf("night 5 changed a constraints branch")
	}

	// The next release branch is cut: the plan has its instance without an edit
	// (instances_from lists the repository's newest v<X>-<Y>-test), v3-3-test keeps its own.
	b.commit("v3-3-test", "v3-4-test: branch defaults", func(dir string) {
		path := filepath.Join(dir, "dev", "breeze", "src", "airflow_breeze", "branch_defaults.py")
		writeFile(t, path, strings.NewReplacer(`"v3-3-test"`, `"v3-4-test"`, `"constraints-3-3"`, `"constraints-3-4"`).Replace(readFile(t, path)), 0o644)
	}, "v3-4-test")
	b.git("branch", "constraints-3-4", "constraints-3-3")
	out = b.refreshd("plan", b.plan())
	for _, want := range []string{"plan airflow/v3-4-test (", `params ref="v3-4-test"`, "plan airflow/v3-3-test (", "plan airflow/main ("} {
		if !strings.Contains(out, want) {
			t.Errorf("after v3-4-test was cut, refreshd plan lacks %q:\n%s", want, tail(out, 2000))
		}
	}

	// Tokens: every download authenticated; no build saw one.
	if n := b.api.unauthenticated(); n != 0 {
		t.Errorf("%d unauthenticated requests reached the GitHub API stand-in", n)
	}
	if n := b.api.authenticated(); n != 4*3*2 {
		t.Errorf("%d authenticated downloads, want 24 (4 nights x 3 modes x 2 Pythons)", n)
	}
	if got := b.loginEntry(); got != b.login {
		t.Errorf("the registry's docker login changed (a build step had the token): %s", got)
	}
}

// TestAirflowPreflightNamesWhatIsMissing: a box without the compose plugin fails the run right
// after the checkout, in seconds, naming it, before breeze is installed or anything built;
// breeze itself would have stopped with "Unknown docker-compose version".
func TestAirflowPreflightNamesWhatIsMissing(t *testing.T) {
	testkit.Need(t, "python3", "diff")
	b := setUp(t)
	if err := os.Remove(filepath.Join(b.dockerConfig(), "cli-plugins", "docker-compose")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run := b.night(1)
	took := time.Since(start)
	if run.Status != history.StatusFailed || !strings.Contains(run.Reason, "preflight: missing docker compose") {
		b.fatalRun(run, "want failed naming the compose plugin")
	}
	b.wantSteps(run, map[string]history.Status{"checkout": history.StatusSucceeded, "preflight": history.StatusFailed, "install-breeze": history.StatusSkipped})
	t.Logf("failed in %s: %s", took.Round(time.Millisecond), run.Reason)
}

func setUp(t *testing.T) *box {
	t.Helper()
	s := teststack.UpDemo(t)
	b := &box{t: t, stack: s, dir: t.TempDir()}
	b.repo = filepath.Join(b.dir, "airflow.git")
	b.plans = filepath.Join(b.dir, "plans")
	b.state = filepath.Join(b.dir, "state")
	b.creds = filepath.Join(b.dir, "credentials")
	b.api = startGitHubAPI(t, b.repo, readToken)
	b.makeRepo()

	// The docker config: the compose plugin and the registry's login (docker login needs
	// an engine this box lacks; this is what it writes).
	plugins := filepath.Join(b.dockerConfig(), "cli-plugins")
	mkdir(t, plugins)
	copyFile(t, "testdata/bin/docker-compose", filepath.Join(plugins, "docker-compose"), 0o755)
	b.login = base64.StdEncoding.EncodeToString([]byte("refreshd:registry-password"))
	cfg := map[string]any{"auths": map[string]any{b.registry(): map[string]string{"auth": b.login}}}
	writeJSON(t, filepath.Join(b.dockerConfig(), "config.json"), cfg)
	// What breeze builds CI images on where a docker engine runs: a builder on the first node.
	b.docker("buildx", "create", "--name", "engine", "--driver", "remote", "--node", "engine0", "--platform", "linux/amd64", s.Env["BUILDKIT_NODE0"])
	// The release engineer ran breeze by hand before: its context of the builder's name,
	// in use (from buildx 0.13 it blocks `buildx create --name airflow_cache`).
	b.docker("context", "create", "airflow_cache")
	b.docker("context", "use", "airflow_cache")

	// The tokens as systemd credentials of the unit ($CREDENTIALS_DIRECTORY).
	mkdir(t, b.creds)
	writeFile(t, filepath.Join(b.creds, "github-read-token"), readToken+"\n", 0o600)
	writeFile(t, filepath.Join(b.creds, "github-token"), "github_pat_push_e2e\n", 0o600)

	// uv, and the real python3 the stand-ins run with (not a version manager's shim).
	bin := filepath.Join(b.dir, "bin")
	mkdir(t, bin)
	copyFile(t, "testdata/bin/uv", filepath.Join(bin, "uv"), 0o755)
	exe, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	pyDir := filepath.Dir(strings.TrimSpace(string(exe)))

	// The plans directory: the shipped plan, byte for byte; the site's builders file; the
	// staging overlay.
	mkdir(t, b.plans)
	copyFile(t, "../../plans/airflow.yaml", b.plan(), 0o644)
	writeFile(t, filepath.Join(b.plans, "builders.yaml"), fmt.Sprintf(`builders:
  - name: airflow_cache
    driver: remote
    emulation: forbid
    nodes:
      - { name: airflow_cache0, endpoint: %q, platform: linux/amd64 }
      - { name: airflow_cache1, endpoint: %q, platform: linux/386 }
`, s.Env["BUILDKIT_NODE0"], s.Env["BUILDKIT_NODE1"]), 0o644)
	reg := b.registry()
	writeFile(t, filepath.Join(b.plans, "airflow.staging.yaml"), fmt.Sprintf(`overlay: airflow
workdir: "%[1]s/work/{{ .instance }}"
env:
  UV_TOOL_DIR: "%[1]s/tools/{{ .instance }}"
  UV_TOOL_BIN_DIR: "%[1]s/tools/{{ .instance }}/bin"
  PATH: "%[1]s/tools/{{ .instance }}/bin:%[1]s/bin:%[2]s:/usr/local/bin:/usr/bin:/bin"
vars:
  platforms: [linux/amd64, linux/386]
  registry: %[3]s
  min_free_gb: "1"
instances_from: { repo: %[4]s }
steps:
  checkout: { checkout: { repo: %[4]s } }
  publish-constraints: { publish_constraints: { repo: %[4]s } }
`, b.dir, pyDir, reg, b.repo), 0o644)
	return b
}

func (b *box) plan() string { return filepath.Join(b.plans, "airflow.yaml") }

// night runs `refreshd run --local` of airflow/main, as the daemon's schedule would, and
// returns the run it recorded.
func (b *box) night(n int, args ...string) *history.Run {
	return b.nightOf("main", n, args...)
}

// nightOf is night for an instance of the plan, with extra arguments (--param ...).
func (b *box) nightOf(instance string, n int, args ...string) *history.Run {
	b.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.t.Context(), 4*time.Minute)
	defer cancel()
	argv := append([]string{"run", "--local", "--state", b.state, "--instance", instance,
		"--plain-http-registry", b.registry()}, args...)
	cmd := exec.CommandContext(ctx, refreshd.Path(b.t), append(argv, b.plan())...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+b.dockerConfig(), "CREDENTIALS_DIRECTORY="+b.creds, "TZ=UTC")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_CONTEXT=") })
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	b.output = out.String()
	st, oerr := history.OpenReadOnly(filepath.Join(b.state, "history.db"))
	if oerr != nil {
		b.t.Fatalf("night %d: %v\n%s", n, oerr, out.String())
	}
	defer st.Close()
	runs, rerr := st.Runs("airflow/"+instance, 1)
	if rerr != nil || len(runs) == 0 {
		b.t.Fatalf("night %d: no run recorded (%v)\n%s", n, rerr, out.String())
	}
	b.t.Logf("night %d: %s in %s (exit: %v) %s", n, runs[0].Status, took, err, runs[0].Reason)
	return runs[0]
}

func (b *box) fatalRun(run *history.Run, msg string) {
	b.t.Helper()
	var lines []string
	for _, s := range run.Steps {
		lines = append(lines, fmt.Sprintf("  %s %s %s", s.Instance, s.Status, s.Reason))
		if s.Status == history.StatusFailed {
			for _, a := range s.Attempts {
				if data, err := os.ReadFile(a.Log); err == nil {
					lines = append(lines, tail(string(data), 3000))
				}
			}
		}
	}
	b.t.Fatalf("%s; run %s %s: %s\n%s", msg, run.ID, run.Status, run.Reason, strings.Join(lines, "\n"))
}

func (b *box) wantSteps(run *history.Run, want map[string]history.Status) {
	b.t.Helper()
	got := map[string]history.Status{}
	for _, s := range run.Steps {
		got[s.Instance] = s.Status
	}
	for id, st := range want {
		if got[id] != st {
			b.t.Errorf("run %s: step %s is %q, want %q", run.ID, id, got[id], st)
		}
	}
}

func (b *box) refreshd(args ...string) string {
	b.t.Helper()
	cmd := exec.Command(refreshd.Path(b.t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("refreshd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// docker runs a docker command on the box's configuration as a person (or breeze) would.
func (b *box) docker(args ...string) string {
	b.t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_") }),
		"DOCKER_CONFIG="+b.dockerConfig())
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (b *box) dockerConfigJSON() map[string]any {
	b.t.Helper()
	var cfg map[string]any
	data, err := os.ReadFile(filepath.Join(b.dockerConfig(), "config.json"))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		b.t.Fatal(err)
	}
	return cfg
}

func (b *box) currentContext() string {
	cur, _ := b.dockerConfigJSON()["currentContext"].(string)
	return cur
}

func (b *box) loginEntry() string {
	auths, _ := b.dockerConfigJSON()["auths"].(map[string]any)
	entry, _ := auths[b.registry()].(map[string]any)
	auth, _ := entry["auth"].(string)
	return auth
}

func (b *box) git(args ...string) string {
	b.t.Helper()
	return testkit.Git(b.t, "", append([]string{"--git-dir", b.repo}, args...)...)
}

func (b *box) branchHead(branch string) string { return b.git("rev-parse", "refs/heads/"+branch) }
func (b *box) show(branch, file string) string { return b.git("show", branch+":"+file) }

// digest asks the registry itself for a tag's manifest digest, "" when it does not exist.
func (b *box) digest(ref string) string {
	b.t.Helper()
	repo, tag, _ := strings.Cut(strings.TrimPrefix(ref, b.registry()+"/"), ":")
	req, _ := http.NewRequest(http.MethodHead, "http://"+b.registry()+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		b.t.Fatalf("HEAD %s: %v", ref, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// commit changes a branch of the repository as a developer would: clone, edit, commit, push
// (to the branch, or to the new branch named by to).
func (b *box) commit(branch, message string, edit func(dir string), to ...string) {
	b.t.Helper()
	dir := b.t.TempDir()
	testkit.Git(b.t, dir, "clone", "--quiet", "--branch", branch, b.repo, ".")
	edit(dir)
	testkit.Git(b.t, dir, "add", "-A")
	testkit.Git(b.t, dir, "commit", "--quiet", "-m", message)
	target := branch
	if len(to) > 0 {
		target = to[0]
	}
	testkit.Git(b.t, dir, "push", "--quiet", "origin", "HEAD:refs/heads/"+target)
}

// makeRepo builds the Airflow-shaped repository: e2e/sample's project (Dockerfile.ci, its
// index and resolver scripts, src/) with Airflow's names and layout (tree/: breeze's
// constants and the stand-in, tests/), branch main and release branch v3-3-test, and the
// constraints branches constraints-main and constraints-3-3 holding last night's files.
func (b *box) makeRepo() {
	t := b.t
	testkit.Git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", b.repo)
	src := t.TempDir()
	for _, f := range []string{"Dockerfile.ci", "deps.txt", "index/packages.txt", "scripts/resolve.sh", "scripts/install.sh", "scripts/constraints.sh", "src/sample.py"} {
		data := readFile(t, filepath.Join("..", "sample", f))
		// Airflow's provider distributions are apache-airflow-providers-*.
		data = strings.ReplaceAll(data, "sample-provider-", "apache-airflow-providers-")
		if f == "Dockerfile.ci" {
			data += "\n# breeze builds --target main (Airflow's last stage of Dockerfile.ci).\nFROM ci AS main\n"
		}
		writeFile(t, filepath.Join(src, f), data, 0o644)
	}
	copyTree(t, "tree", src)
	writeFile(t, filepath.Join(src, "version.txt"), "3.4.0.dev0\n", 0o644)
	writeFile(t, filepath.Join(src, "uv.lock"), "# the lock file CI rebuilds from on push (update-constraints-on-push.yml)\nversion = 1\n", 0o644)
	writeJSON(t, filepath.Join(src, "dev", "breeze", "standin.json"), map[string]any{
		"registry":        b.registry(),
		"github_api":      b.api.URL,
		"engine_builder":  "engine", // setUp's builder, standing in for the docker engine's
		"base_image":      b.registry() + "/base/busybox:1",
		"install_work_mb": 20,
	})
	testkit.Git(t, src, "init", "--quiet", "--initial-branch=main")
	testkit.Git(t, src, "add", "-A")
	testkit.Git(t, src, "commit", "--quiet", "-m", "Airflow-shaped sample")
	testkit.Git(t, src, "push", "--quiet", b.repo, "HEAD:main")
	// The release branch: its own branch_defaults.
	defaults := filepath.Join(src, "dev", "breeze", "src", "airflow_breeze", "branch_defaults.py")
	writeFile(t, defaults, strings.NewReplacer(`"main"`, `"v3-3-test"`, `"constraints-main"`, `"constraints-3-3"`).Replace(readFile(t, defaults)), 0o644)
	testkit.Git(t, src, "commit", "--quiet", "-am", "v3-3-test: branch defaults")
	testkit.Git(t, src, "push", "--quiet", b.repo, "HEAD:refs/heads/v3-3-test")
	// Last night's constraints: the pins of the lock, with an old header.
	for _, branch := range []string{"constraints-main", "constraints-3-3"} {
		c := t.TempDir()
		testkit.Git(t, c, "init", "--quiet", "--initial-branch="+branch)
		for _, py := range []string{"3.11", "3.12"} {
			for _, mode := range []string{"constraints", "constraints-source-providers", "constraints-no-providers"} {
				writeFile(t, filepath.Join(c, mode+"-"+py+".txt"), "#\n# This constraints file was automatically generated on 2026-12-01T02:00:00\n#\nattrs==23.1.0\n", 0o644)
			}
		}
		testkit.Git(t, c, "add", "-A")
		testkit.Git(t, c, "commit", "--quiet", "-m", "Updating constraints")
		testkit.Git(t, c, "push", "--quiet", b.repo, "HEAD:refs/heads/"+branch)
	}
}

// githubAPI stands in for api.github.com's contents endpoint, which breeze's constraint
// generation downloads the current constraint files from (run_generate_constraints.py
// download_latest_constraint_file): GET /repos/OWNER/REPO/contents/FILE?ref=BRANCH with
// Accept: application/vnd.github.v3.raw, the file's raw content read from the repository's
// branch. A request without "Authorization: Bearer TOKEN" gets the 403 api.github.com gives
// once the 60 unauthenticated requests of the hour are spent (here: none are left).
type githubAPI struct {
	*httptest.Server
	mu          sync.Mutex
	anon, authn int
}

func startGitHubAPI(t *testing.T, repo, token string) *githubAPI {
	api := &githubAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		authorized := r.Header.Get("Authorization") == "Bearer "+token
		if authorized {
			api.authn++
		} else {
			api.anon++
		}
		api.mu.Unlock()
		if !authorized {
			w.Header().Set("X-RateLimit-Remaining", "0")
			http.Error(w, `{"message":"API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit.)"}`, http.StatusForbidden)
			return
		}
		file, ok := strings.CutPrefix(r.URL.Path, "/repos/apache/airflow/contents/")
		ref := r.URL.Query().Get("ref")
		if !ok || ref == "" || strings.Contains(file, "/") || strings.HasPrefix(ref, "-") || r.Header.Get("Accept") != "application/vnd.github.v3.raw" {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		out, err := testkit.GitCmd(r.Context(), "", "--git-dir", repo, "show", "refs/heads/"+ref+":"+file).Output()
		if err != nil {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		w.Write(out)
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *githubAPI) unauthenticated() int { a.mu.Lock(); defer a.mu.Unlock(); return a.anon }
func (a *githubAPI) authenticated() int   { a.mu.Lock(); defer a.mu.Unlock(); return a.authn }

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data)+"\n", 0o600)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	writeFile(t, to, readFile(t, from), mode)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		copyFile(t, path, filepath.Join(to, rel), 0o644)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	writeFile(t, path, readFile(t, path)+line+"\n", 0o644)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
