package executor

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// Real-stack tests of node pools: two buildkitd nodes pinned to linux/amd64 form one pool.
// Each build ADDs a file from an HTTP server of the test, which buildkitd itself fetches
// while the build runs: the server sees when builds are really in progress, and can hold
// them (a barrier) or act in the middle of one (kill its node).

// poolPlanYAML builds @PYTHONS@ on the pool, @CONC@ builds at once.
const poolPlanYAML = `plan: @NAME@
workdir: @CTX@
vars:
  python: [@PYTHONS@]
  registry: @REGISTRY@/pool/@NAME@
builders:
  - name: pool
    driver: remote
    emulation: forbid
    nodes:
      - { name: pool0, endpoint: "@EP0@", platform: linux/amd64 }
      - { name: pool1, endpoint: "@EP1@", platform: linux/amd64 }
steps:
  - id: refresh-cache
    matrix: { python: "{{ .vars.python }}" }
    concurrency: @CONC@
    buildx_cache:
      builder: pool
      context: "."
      build_args: { PYTHON: "{{ .python }}", URL: "@URL@/@NAME@" }
      platforms: [linux/amd64]
      ref: "{{ .vars.registry }}/python{{ .python }}"
`

// fetchServer answers buildkitd's fetches of URL/PLAN/PYTHON. Each GET calls onGet (when
// set) and then waits until want GETs are in flight at once, or hold has passed; it records
// the most in flight it saw.
type fetchServer struct {
	*httptest.Server
	want  int
	hold  time.Duration
	onGet func(n int) // n: this GET's 1-based number

	mu       sync.Mutex
	inFlight int
	maxSeen  int
	gets     int
	cond     *sync.Cond
}

func newFetchServer(t *testing.T, want int, hold time.Duration) *fetchServer {
	f := &fetchServer{want: want, hold: hold}
	f.cond = sync.NewCond(&f.mu)
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fetchServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusOK)
		return
	}
	f.mu.Lock()
	f.gets++
	n := f.gets
	f.inFlight++
	f.maxSeen = max(f.maxSeen, f.inFlight)
	f.cond.Broadcast()
	f.mu.Unlock()
	if f.onGet != nil {
		f.onGet(n)
	}
	deadline := time.Now().Add(f.hold)
	timer := time.AfterFunc(f.hold, func() { f.mu.Lock(); f.cond.Broadcast(); f.mu.Unlock() })
	f.mu.Lock()
	for f.inFlight < f.want && f.maxSeen < f.want && time.Now().Before(deadline) {
		f.cond.Wait()
	}
	f.inFlight--
	f.mu.Unlock()
	timer.Stop()
	_, _ = w.Write([]byte(r.URL.Path + "\n"))
}

func (f *fetchServer) most() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxSeen
}

// nodeDownRecorder is an Observer that keeps the NodeDown events, as "FOUND NODE PLATFORM".
type nodeDownRecorder struct {
	mu     sync.Mutex
	events []string
}

func (*nodeDownRecorder) RunStarted(*history.Run)           {}
func (*nodeDownRecorder) StepChanged(string, *history.Step) {}
func (*nodeDownRecorder) RunFinished(*history.Run)          {}
func (*nodeDownRecorder) Line(string, string, string)       {}
func (r *nodeDownRecorder) NodeDown(_ string, d history.NodeDown) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, string(d.Found)+" "+d.Builder+"/"+d.Node+" "+d.Platform)
}

// take returns the events so far and forgets them.
func (r *nodeDownRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// poolContext is a build context that ADDs URL/PYTHON.
func poolContext(t *testing.T) string {
	dir := t.TempDir()
	df := "FROM scratch\nARG PYTHON\nARG URL\nADD ${URL}/${PYTHON} /python.txt\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (es *engineStack) loadPool(t *testing.T, name, pythons string, conc int, url string) *plan.Graph {
	return es.load(t, poolPlanYAML, "@NAME@", name, "@CTX@", poolContext(t), "@PYTHONS@", pythons,
		"@CONC@", strconv.Itoa(conc), "@URL@", url)
}

// builtOn maps each buildx_cache instance of r to the node history says built it, and
// checks each one's cache tag is verified.
func builtOn(t *testing.T, r *history.Run) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range r.Steps {
		if !strings.HasPrefix(s.Instance, "refresh-cache") {
			continue
		}
		out[s.Instance] = s.Node
		if len(s.Caches) != 1 || !s.Caches[0].Verified {
			t.Errorf("%s: caches %+v, want one verified", s.Instance, s.Caches)
		}
	}
	return out
}

func TestPoolBuildsTwoPythonsAtOnceOnTwoNodes(t *testing.T) {
	es := newEngineStack(t)
	srv := newFetchServer(t, 2, 20*time.Second)
	g := es.loadPool(t, "twonodes", `"3.11", "3.12"`, 2, srv.URL)
	r, cmds := es.run(t, g)
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	if srv.most() < 2 {
		t.Errorf("at most %d build(s) fetched at once, want the two Pythons at the same time", srv.most())
	}
	for _, s := range r.Steps {
		t.Logf("%s: %s..%s", s.Instance, s.Start.Format("05.000"), s.End.Format("05.000"))
	}
	nodes := builtOn(t, r)
	if len(nodes) != 2 || nodes["refresh-cache[python=3.11][linux/amd64]"] == nodes["refresh-cache[python=3.12][linux/amd64]"] {
		t.Errorf("built on %v, want the two Pythons on different nodes", nodes)
	}
	// Each build went through its node's own builder, which provisioning created.
	for _, want := range []string{"buildx create --name=pool.pool0 ", "buildx create --name=pool.pool1 "} {
		if !slices.ContainsFunc(cmds, func(c string) bool { return strings.HasPrefix(c, want) }) {
			t.Errorf("no %q among the run's docker commands", want)
		}
	}
	for _, b := range builds(cmds) {
		if !strings.Contains(b, "--builder=pool.pool0 ") && !strings.Contains(b, "--builder=pool.pool1 ") {
			t.Errorf("build not pinned to one node's builder: %s", b)
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q, want none", r.Warnings)
	}
	// Provisioning reads `docker buildx ls` once for the builder and both nodes' builders:
	// once to compare, once to check what it created; the next run, with nothing to
	// change, once in all (it was once per pooled node).
	if got := lsCalls(cmds); got != 2 {
		t.Errorf("first run: %d buildx ls calls, want 2 (compare, check)", got)
	}
	r2, cmds2 := es.run(t, g)
	if r2.Status != history.StatusSucceeded {
		t.Fatalf("second run %s: %s", r2.Status, r2.Reason)
	}
	if got := builderChanges(cmds2); len(got) != 0 {
		t.Errorf("second run changed builders: %q", got)
	}
	if got := lsCalls(cmds2); got != 1 {
		t.Errorf("second run: %d buildx ls calls, want 1 for the builder and its 2 pooled nodes", got)
	}
}

// lsCalls counts the `docker buildx ls` among cmds.
func lsCalls(cmds []string) int {
	n := 0
	for _, c := range cmds {
		if strings.HasPrefix(c, "buildx ls ") {
			n++
		}
	}
	return n
}

func TestPoolNodeKilledMidRunDegradesToTheOther(t *testing.T) {
	es := newEngineStack(t)
	srv := newFetchServer(t, 1, 0)
	// The first fetch is the first build, on pool0 (the first free node in declared
	// order): its node is killed while buildkitd waits for the answer.
	var once sync.Once
	srv.onGet = func(int) { once.Do(es.nodes[0].Kill) }
	g := es.loadPool(t, "killed", `"3.11", "3.12"`, 1, srv.URL)
	start := time.Now()
	r, _ := es.run(t, g)
	t.Logf("run with a node killed mid-build: %s", time.Since(start).Round(time.Millisecond))
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	for inst, node := range builtOn(t, r) {
		if node != "pool1" {
			t.Errorf("%s recorded on node %q, want pool1 (pool0 was killed)", inst, node)
		}
	}
	warned := false
	for _, w := range r.Warnings {
		warned = warned || strings.Contains(w, "node pool0") && strings.Contains(w, "went down")
	}
	if !warned {
		t.Errorf("run warnings %q, want one saying pool0 went down", r.Warnings)
	}
	// The observer (the daemon's metric) heard of it once, as found during a build.
	if got, want := es.downs.take(), []string{"build pool/pool0 linux/amd64"}; !slices.Equal(got, want) {
		t.Errorf("observer told of nodes down %q, want %q", got, want)
	}

	// The next run finds pool0 down at provisioning: skipped with a warning, every build
	// on pool1, nothing waits for the dead node beyond provisioning's checks.
	r2, _ := es.run(t, g)
	if r2.Status != history.StatusSucceeded {
		t.Fatalf("second run %s: %s", r2.Status, r2.Reason)
	}
	warned = false
	for _, w := range r2.Warnings {
		warned = warned || strings.Contains(w, "node pool0") && strings.Contains(w, "skipped by this run")
	}
	if !warned {
		t.Errorf("second run warnings %q, want pool0 skipped", r2.Warnings)
	}
	if got, want := es.downs.take(), []string{"provisioning pool/pool0 linux/amd64"}; !slices.Equal(got, want) {
		t.Errorf("second run: observer told of nodes down %q, want %q", got, want)
	}
	for inst, node := range builtOn(t, r2) {
		if node != "pool1" {
			t.Errorf("second run: %s on node %q, want pool1", inst, node)
		}
	}
}

func TestPoolPlatformWithNoLiveNodeFailsBeforeAnyBuild(t *testing.T) {
	es := newEngineStack(t)
	srv := newFetchServer(t, 1, 0)
	g := es.loadPool(t, "alldown", `"3.11"`, 1, srv.URL)
	es.nodes[0].Kill()
	es.nodes[1].Kill()
	r, cmds := es.run(t, g)
	if r.Status != history.StatusFailed || !strings.Contains(r.Reason, "provision[pool]") {
		t.Fatalf("run %s: %s; want failed in provision", r.Status, r.Reason)
	}
	if got := builds(cmds); len(got) != 0 {
		t.Errorf("builds issued with no live node: %q", got)
	}
	s := stepOf(t, r, "provision[pool]")
	if !strings.Contains(s.Reason, "no running node for linux/amd64") {
		t.Errorf("provision failed with %q, want no running node for linux/amd64", s.Reason)
	}
	// Not a pool going on degraded: the run failed, which is its own alert.
	if got := es.downs.take(); len(got) != 0 {
		t.Errorf("observer told of nodes down %q for a run that failed", got)
	}
}

func TestPoolTwoPlansShareOneBuilder(t *testing.T) {
	es := newEngineStack(t)
	srv := newFetchServer(t, 2, 20*time.Second)
	// Each plan builds its Pythons one after another; the server holds every fetch until
	// two are in flight, which only happens when the plans build at the same time.
	ga := es.loadPool(t, "plana", `"3.11", "3.12"`, 1, srv.URL)
	gb := es.loadPool(t, "planb", `"3.11", "3.12"`, 1, srv.URL)
	// Both runs provision the builder first, at the same time (each ls slowed down so that
	// the first is surely still at it when the second starts): they share one provisioning.
	if err := os.WriteFile(es.slowLs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(es.dockerCommands(t))
	var wg sync.WaitGroup
	runs := make([]*history.Run, 2)
	for i, g := range []*plan.Graph{ga, gb} {
		wg.Go(func() {
			r, err := es.engine.Run(t.Context(), g, RunSpec{Trigger: history.TriggerManual})
			if err != nil {
				t.Error(err)
				return
			}
			runs[i] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, r := range runs {
		if r.Status != history.StatusSucceeded {
			t.Fatalf("plan %s run %s: %s", r.Plan, r.Status, r.Reason)
		}
	}
	// One provisioning for both: compare, create, check (2 ls); a second one would have
	// read ls again after the first (3).
	if got := lsCalls(es.dockerCommands(t)[before:]); got != 2 {
		t.Errorf("two runs provisioning one builder at once issued %d buildx ls, want 2: one provisioning shared", got)
	}
	if srv.most() < 2 {
		t.Errorf("at most %d build(s) at once over the two plans, want their builds interleaved", srv.most())
	}
	// Neither waited for the other's whole run: each one's first build started before the
	// other's last build ended.
	span := func(r *history.Run) (time.Time, time.Time) {
		var f, l time.Time
		for _, s := range r.Steps {
			if !strings.HasPrefix(s.Instance, "refresh-cache") || len(s.Attempts) == 0 {
				continue
			}
			a := s.Attempts[0]
			if f.IsZero() || a.Start.Before(f) {
				f = a.Start
			}
			if a.End.After(l) {
				l = a.End
			}
		}
		return f, l
	}
	fa, la := span(runs[0])
	fb, lb := span(runs[1])
	if !fa.Before(lb) || !fb.Before(la) {
		t.Errorf("one plan waited for the other: plan a builds %s..%s, plan b %s..%s", fa.Format("05.000"), la.Format("05.000"), fb.Format("05.000"), lb.Format("05.000"))
	}
}
