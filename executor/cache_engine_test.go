package executor

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// Real-stack tests of the built-in buildx actions run the way production runs them: a plan
// YAML loaded and expanded by package plan, run by Engine.Run on two real buildkitd nodes
// and a real registry, recorded in a real store. Every docker invocation goes through a
// wrapper that appends its argv to a file and execs the real docker: builder changes are
// counted from what was really issued.

// cachePlanYAML is a plan over 2 Python versions x the platforms of the builder's two
// nodes: provision (added by expansion), one buildx_cache build per Python and platform,
// one verify_cache per tag. @...@ are filled in by writePlan.
const cachePlanYAML = `plan: @NAME@
workdir: @WORK@
vars:
  python: ["3.11", "3.12"]
  platforms: [linux/amd64, @PLATFORM1@]
  registry: @REGISTRY@/demo/main/ci
builders:
  - name: cache
    driver: remote
    emulation: forbid
    nodes:
      - { name: cache0, endpoint: "@EP0@", platform: linux/amd64 }
      - { name: cache1, endpoint: "@EP1@", platform: @PLATFORM1@ }
steps:
  - id: refresh-cache
    matrix: { python: "{{ .vars.python }}" }
    concurrency: 1
    buildx_cache:
      builder: cache
      context: "."
      build_args: { PYTHON: "{{ .python }}" }
      platforms: "{{ .vars.platforms }}"
      ref: "{{ .vars.registry }}/python{{ .python }}"
  - id: verify-cache
    needs: [refresh-cache]
    matrix: { python: "{{ .vars.python }}", platform: "{{ .vars.platforms }}" }
    verify_cache:
      ref: "{{ .vars.registry }}/python{{ .python }}:cache-{{ platformTag .platform }}"
`

// runStepPlanYAML is Airflow's shape: a run step drives buildx itself (as breeze does), so
// refreshd sees the registry only in the verify step. @VERIFY@ lists the Python versions
// whose tags are verified.
const runStepPlanYAML = `plan: @NAME@
workdir: @WORK@
vars:
  python: ["3.11", "3.12"]
  verify: [@VERIFY@]
  registry: @REGISTRY@/breeze/main/ci
builders:
  - name: cache
    driver: remote
    emulation: forbid
    nodes:
      - { name: cache0, endpoint: "@EP0@", platform: linux/amd64 }
      - { name: cache1, endpoint: "@EP1@", platform: linux/386 }
steps:
  - id: build
    builder: cache
    matrix: { python: "{{ .vars.python }}" }
    run: [docker, buildx, build, --builder, cache, --platform, linux/amd64,
          --build-arg, "PYTHON={{ .python }}",
          --cache-from, "type=registry,ref={{ .vars.registry }}/python{{ .python }}:cache-linux-amd64",
          --cache-to, "type=registry,ref={{ .vars.registry }}/python{{ .python }}:cache-linux-amd64,mode=max",
          --output, type=cacheonly, --progress, plain, "."]
  - id: verify-cache
    needs: [build]
    matrix: { python: "{{ .vars.verify }}" }
    verify_cache:
      ref: "{{ .vars.registry }}/python{{ .python }}:cache-linux-amd64"
`

// engineStack is a cacheStack driven through the engine.
type engineStack struct {
	*cacheStack
	engine    *Engine
	store     *history.Store
	dockerLog string // one line per docker invocation: its arguments
	reg       *registry.Client
	downs     *nodeDownRecorder // what the engine told its observer of pool nodes down
	slowLs    string            // while this file exists, the docker wrapper delays buildx ls
}

func newEngineStack(t *testing.T) *engineStack {
	t.Helper()
	s := newCacheStack(t)
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	es := &engineStack{cacheStack: s, dockerLog: filepath.Join(bin, "docker.log")}
	es.slowLs = filepath.Join(bin, "slow-ls")
	// While the file slow-ls exists, every `buildx ls` takes a second longer: a provisioning
	// is then surely still in progress when another run's starts.
	wrapper := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + es.dockerLog + "'\n" +
		"if [ \"$1 $2\" = 'buildx ls' ] && [ -e '" + es.slowLs + "' ]; then sleep 1; fi\n" +
		"exec '" + docker + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	// The engine's own Tools (Tools are not copied: they hold the shared registry client).
	tools := &Tools{
		Docker: filepath.Join(bin, "docker"), DockerConfig: s.tools.DockerConfig, PlainHTTPRegistries: s.tools.PlainHTTPRegistries,
		NodeWait: s.tools.NodeWait, RegistryRetryWaitMin: s.tools.RegistryRetryWaitMin,
	}
	es.store, err = history.Open(filepath.Join(s.state, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.store.Close() })
	es.downs = &nodeDownRecorder{}
	es.engine, err = New(Config{StateDir: s.state, Store: es.store, Tools: tools, KillGrace: 2 * time.Second, Observer: es.downs,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	es.reg = registry.New(registry.Options{DockerConfig: tools.DockerConfig, PlainHTTP: []string{"127.0.0.1"}})
	return es
}

// load writes a plan file from tmpl, loads it and expands it, as the daemon does.
func (es *engineStack) load(t *testing.T, tmpl string, vars ...string) *plan.Graph {
	t.Helper()
	vars = append([]string{"@WORK@", es.work, "@REGISTRY@", es.cacheStack.reg.Host,
		"@EP0@", es.nodes[0].Endpoint, "@EP1@", es.nodes[1].Endpoint}, vars...)
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(strings.NewReplacer(vars...).Replace(tmpl)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := plan.LoadFile(path)
	if err != nil {
		t.Fatalf("load plan: %v", err)
	}
	g, err := plan.Expand(p)
	if err != nil {
		t.Fatalf("expand plan: %v", err)
	}
	return g
}

// run runs g through the engine and returns the stored record and the docker commands the
// run issued.
func (es *engineStack) run(t *testing.T, g *plan.Graph) (*history.Run, []string) {
	t.Helper()
	before := es.dockerCommands(t)
	r, err := es.engine.Run(t.Context(), g, RunSpec{Trigger: history.TriggerManual})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	stored, err := es.store.Run(r.ID)
	if err != nil {
		t.Fatalf("stored run: %v", err)
	}
	return stored, es.dockerCommands(t)[len(before):]
}

func (es *engineStack) dockerCommands(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(es.dockerLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// builderChanges are the commands that change a builder: create (also --append and
// --leave) and rm.
func builderChanges(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		if strings.HasPrefix(c, "buildx create ") || strings.HasPrefix(c, "buildx rm ") {
			out = append(out, c)
		}
	}
	return out
}

func builds(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		if strings.HasPrefix(c, "buildx build ") {
			out = append(out, c)
		}
	}
	return out
}

// registryDigest is ref's digest as the registry has it now; the test fails if it is absent.
func (es *engineStack) registryDigest(t *testing.T, ref string) string {
	t.Helper()
	d, found, err := es.reg.Digest(t.Context(), ref)
	if err != nil || !found {
		t.Fatalf("registry: %s: found %v, err %v", ref, found, err)
	}
	return d
}

// cachesOf maps each ref recorded by the run's steps whose id starts with prefix to its
// record, and the instance that recorded it.
func cachesOf(r *history.Run, prefix string) map[string]history.Cache {
	m := map[string]history.Cache{}
	for _, s := range r.Steps {
		if strings.HasPrefix(s.Instance, prefix) {
			for _, c := range s.Caches {
				m[c.Ref] = c
			}
		}
	}
	return m
}

func runDuration(r *history.Run) time.Duration { return r.End.Sub(r.Start).Round(time.Millisecond) }

func TestEngineCacheRefreshTwoPythonsTwoPlatforms(t *testing.T) {
	es := newEngineStack(t)
	g := es.load(t, cachePlanYAML, "@NAME@", "cache-demo", "@PLATFORM1@", "linux/386")

	r1, cmds1 := es.run(t, g)
	if r1.Status != history.StatusSucceeded {
		t.Fatalf("first run %s: %s", r1.Status, r1.Reason)
	}
	if got := builderChanges(cmds1); len(got) != 2 {
		t.Errorf("first run builder changes %q, want create and create --append", got)
	}
	if got := builds(cmds1); len(got) != 4 {
		t.Errorf("first run builds %d, want 4: %q", len(got), got)
	}
	// Every build instance: the node pinned to its platform built it, its new cache tag is
	// in the registry with the digest history recorded.
	digests := map[string]string{}
	nbuilds := 0
	for _, inst := range g.Instances {
		act, ok := inst.Action.(*plan.BuildxCacheAction)
		if !ok {
			continue
		}
		nbuilds++
		s := stepOf(t, r1, inst.ID)
		want := map[string]string{"linux/amd64": "cache0", "linux/386": "cache1"}[act.Platform]
		if s.Node != want {
			t.Errorf("%s built on node %q, want %s", inst.ID, s.Node, want)
		}
		d := es.registryDigest(t, act.CacheRef)
		digests[act.CacheRef] = d
		if len(s.Caches) != 1 || s.Caches[0] != (history.Cache{Ref: act.CacheRef, After: d, Changed: true, Verified: true}) {
			t.Errorf("%s caches %+v, want new %s at %s", inst.ID, s.Caches, act.CacheRef, d)
		}
	}
	if nbuilds != 4 || len(digests) != 4 {
		t.Fatalf("%d build instances over %d refs, want 4 and 4", nbuilds, len(digests))
	}
	// The verify steps saw the same digests; with no earlier run, each tag is new.
	for ref, c := range cachesOf(r1, "verify-cache") {
		if c != (history.Cache{Ref: ref, After: digests[ref], Changed: true, Verified: true}) {
			t.Errorf("first verify of %s: %+v, want new at %s", ref, c, digests[ref])
		}
	}
	if v, m := r1.CacheTags(); v != 4 || m != 0 {
		t.Errorf("first run cache tags verified %d missing %d, want 4 and 0", v, m)
	}

	r2, cmds2 := es.run(t, g)
	t.Logf("2 Python x 2 platforms through the engine: first run %s, second run (cache reused) %s", runDuration(r1), runDuration(r2))
	if r2.Status != history.StatusSucceeded {
		t.Fatalf("second run %s: %s", r2.Status, r2.Reason)
	}
	if got := builderChanges(cmds2); len(got) != 0 {
		t.Errorf("second run issued builder changes: %q", got)
	}
	for prefix, what := range map[string]string{"refresh-cache": "build", "verify-cache": "verify"} {
		caches := cachesOf(r2, prefix)
		if len(caches) != 4 {
			t.Errorf("second run %s records %d caches, want 4", what, len(caches))
		}
		for ref, c := range caches {
			if c != (history.Cache{Ref: ref, Before: digests[ref], After: digests[ref], Verified: true}) {
				t.Errorf("second %s of %s: %+v, want unchanged %s", what, ref, c, digests[ref])
			}
		}
	}

	// A changed context rebuilds the python3.11 caches only; the verify step says so.
	if err := os.WriteFile(filepath.Join(es.work, "py3.11.txt"), []byte("3.11 changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	r3, _ := es.run(t, g)
	if r3.Status != history.StatusSucceeded {
		t.Fatalf("third run %s: %s", r3.Status, r3.Reason)
	}
	for ref, c := range cachesOf(r3, "verify-cache") {
		now := es.registryDigest(t, ref)
		changed := strings.Contains(ref, "python3.11:")
		if c.Before != digests[ref] || c.After != now || c.Changed != changed || (now != digests[ref]) != changed {
			t.Errorf("verify after the rebuild of %s: %+v; want before %s, after %s (registry), changed %v", ref, c, digests[ref], now, changed)
		}
	}

	// Something outside refreshd pushes another cache to one ref between runs (Airflow's own
	// CI does). The next run's build reads that "before" from the registry and restores the
	// plan's cache; its verify step reports the build's "before", not the last run's record.
	ref := es.cacheStack.reg.Host + "/demo/main/ci/python3.12:cache-linux-amd64"
	push := exec.CommandContext(t.Context(), "docker", "buildx", "build", "--builder", "cache", "--platform", "linux/amd64",
		"--build-arg", "PYTHON=3.11", "--cache-to", "type=registry,ref="+ref+",mode=max", "--output", "type=cacheonly", es.work)
	push.Env = teststack.Env(es.tools.DockerConfig)
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("push from outside refreshd: %v\n%s", err, out)
	}
	foreign := es.registryDigest(t, ref)
	if foreign == digests[ref] {
		t.Fatalf("the push from outside did not change %s", ref)
	}
	r4, _ := es.run(t, g)
	if r4.Status != history.StatusSucceeded {
		t.Fatalf("fourth run %s: %s", r4.Status, r4.Reason)
	}
	want := history.Cache{Ref: ref, Before: foreign, After: digests[ref], Changed: true, Verified: true}
	if c := cachesOf(r4, "verify-cache")[ref]; c != want {
		t.Errorf("verify after a push from outside: %+v, want %+v", c, want)
	}
}

// The verify step of a plan whose builds are run steps takes "before" from the plan's
// previous run in history.
func TestEngineVerifyBeforeFromHistory(t *testing.T) {
	es := newEngineStack(t)
	both := es.load(t, runStepPlanYAML, "@NAME@", "breeze", "@VERIFY@", `"3.11", "3.12"`)
	ref := func(py string) string {
		return es.cacheStack.reg.Host + "/breeze/main/ci/python" + py + ":cache-linux-amd64"
	}

	type want struct {
		before, after string // "old" and "new" are the digests before and after the change
		changed       bool
		verified      bool
	}
	var old, changed311 string
	check := func(t *testing.T, r *history.Run, wants map[string]want) {
		t.Helper()
		caches := cachesOf(r, "verify-cache")
		if len(caches) != len(wants) {
			t.Errorf("run %s verified %d refs, want %d: %+v", r.ID, len(caches), len(wants), caches)
		}
		name := map[string]string{"": "", "old": old, "new": changed311}
		for py, w := range wants {
			c := caches[ref(py)]
			exp := history.Cache{Ref: ref(py), Before: name[w.before], After: name[w.after], Changed: w.changed, Verified: w.verified}
			if w.after == "registry" {
				exp.After = es.registryDigest(t, ref(py))
			}
			if c != exp {
				t.Errorf("run %s python %s: %+v, want %+v", r.ID, py, c, exp)
			}
		}
	}

	r1, _ := es.run(t, both)
	if r1.Status != history.StatusSucceeded {
		t.Fatalf("first run %s: %s", r1.Status, r1.Reason)
	}
	old = es.registryDigest(t, ref("3.11"))
	// No earlier record: before is unknown (""), the tag is new, so changed.
	check(t, r1, map[string]want{"3.11": {"", "old", true, true}, "3.12": {"", "registry", true, true}})

	r2, _ := es.run(t, both)
	if r2.Status != history.StatusSucceeded {
		t.Fatalf("second run %s: %s", r2.Status, r2.Reason)
	}
	c1, c2 := cachesOf(r1, "verify-cache"), cachesOf(r2, "verify-cache")
	for _, py := range []string{"3.11", "3.12"} {
		if got := c2[ref(py)]; got.Before != c1[ref(py)].After || got.Changed || got.After != got.Before {
			t.Errorf("second run python %s: %+v, want before = first run's after %s, unchanged", py, got, c1[ref(py)].After)
		}
	}

	if err := os.WriteFile(filepath.Join(es.work, "py3.11.txt"), []byte("3.11 changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	r3, _ := es.run(t, both)
	if r3.Status != history.StatusSucceeded {
		t.Fatalf("third run %s: %s", r3.Status, r3.Reason)
	}
	changed311 = es.registryDigest(t, ref("3.11"))
	if changed311 == old {
		t.Fatalf("the changed context did not change the python3.11 cache (%s)", old)
	}
	c3 := cachesOf(r3, "verify-cache")
	if got := c3[ref("3.11")]; got.Before != old || got.After != changed311 || !got.Changed {
		t.Errorf("third run python 3.11: %+v, want %s -> %s changed", got, old, changed311)
	}
	if got := c3[ref("3.12")]; got.Before != c2[ref("3.12")].After || got.Changed {
		t.Errorf("third run python 3.12: %+v, want unchanged", got)
	}

	// A tag never pushed: recorded missing (not verified, no digest) before the step fails,
	// so the run's cache tag counts (the daemon's metrics) include it.
	missing := es.load(t, runStepPlanYAML, "@NAME@", "breeze", "@VERIFY@", `"3.11", "3.13"`)
	r4, _ := es.run(t, missing)
	if r4.Status != history.StatusFailed || !strings.Contains(r4.Reason, "cache tags missing in the registry: "+ref("3.13")) {
		t.Errorf("run with a missing tag: %s: %s", r4.Status, r4.Reason)
	}
	check(t, r4, map[string]want{"3.11": {"new", "new", false, true}, "3.13": {"", "", false, false}})
	if v, m := r4.CacheTags(); v != 1 || m != 1 {
		t.Errorf("cache tags verified %d missing %d, want 1 and 1", v, m)
	}
}

func TestEngineCacheRefreshNodeDownFailsBeforeAnyBuild(t *testing.T) {
	es := newEngineStack(t)
	g := es.load(t, cachePlanYAML, "@NAME@", "cache-demo", "@PLATFORM1@", "linux/386")
	es.engine.cfg.Tools.NodeWait.BootstrapTimeout = time.Second // a dead node never boots; fail sooner
	es.nodes[1].Kill()
	r, cmds := es.run(t, g)
	if r.Status != history.StatusFailed {
		t.Fatalf("run with a killed node: %s, want failed", r.Status)
	}
	for _, want := range []string{"provision[cache]", "builder cache", "node cache1", es.nodes[1].Endpoint, "inactive", "nothing built"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("run reason %q does not name %q", r.Reason, want)
		}
	}
	if got := builds(cmds); len(got) > 0 {
		t.Errorf("builds ran: %q", got)
	}
	assertBuildsSkipped(t, g, r, "needs provision[cache] which failed")
}

func TestEngineCacheRefreshEmulationForbidden(t *testing.T) {
	es := newEngineStack(t)
	g := es.load(t, cachePlanYAML, "@NAME@", "cache-demo", "@PLATFORM1@", "linux/arm64")
	r, cmds := es.run(t, g)
	if r.Status != history.StatusFailed {
		t.Fatalf("run with a node pinned to linux/arm64: %s, want failed", r.Status)
	}
	want := "emulation: forbid refuses the run before any build: builder cache node cache1 (" + es.nodes[1].Endpoint + ") declared linux/arm64, native linux/amd64"
	if !strings.Contains(r.Reason, want) {
		t.Errorf("run reason %q, want it to contain %q", r.Reason, want)
	}
	if got := builds(cmds); len(got) > 0 {
		t.Errorf("builds ran: %q", got)
	}
	assertBuildsSkipped(t, g, r, "needs provision[cache] which failed")
}

// assertBuildsSkipped checks that no buildx_cache instance ran and each was skipped for why.
func assertBuildsSkipped(t *testing.T, g *plan.Graph, r *history.Run, why string) {
	t.Helper()
	n := 0
	for _, inst := range g.Instances {
		if _, ok := inst.Action.(*plan.BuildxCacheAction); !ok {
			continue
		}
		n++
		s := stepOf(t, r, inst.ID)
		if s.Status != history.StatusSkipped || s.Reason != why || len(s.Attempts) > 0 || len(s.Caches) > 0 {
			t.Errorf("%s: %s %q, %d attempts, caches %+v; want skipped %q, never attempted", inst.ID, s.Status, s.Reason, len(s.Attempts), s.Caches, why)
		}
	}
	if n != 4 {
		t.Errorf("%d buildx_cache instances, want 4", n)
	}
}
