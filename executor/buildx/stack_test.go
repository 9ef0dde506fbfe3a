package buildx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/internal/teststack"
)

// recorder counts the commands a Client runs that change something.
type recorder struct {
	mu    sync.Mutex
	argvs [][]string
}

func (r *recorder) runner() buildx.Runner {
	exec := buildx.ExecRunner(nil, nil)
	return func(ctx context.Context, argv, env []string, stdout io.Writer) error {
		r.mu.Lock()
		r.argvs = append(r.argvs, argv)
		r.mu.Unlock()
		return exec(ctx, argv, env, stdout)
	}
}

// builderChanges lists the create/rm commands run, as "create --append --node n1"-like strings.
func (r *recorder) builderChanges() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.argvs {
		if len(a) > 2 && a[1] == "buildx" && (a[2] == "create" || a[2] == "rm") {
			out = append(out, strings.Join(a[2:], " "))
		}
	}
	return out
}

type stack struct {
	client *buildx.Client
	rec    *recorder
	nodes  []*teststack.Buildkitd
}

func newStack(t *testing.T, nodes int) *stack {
	t.Helper()
	teststack.Require(t)
	s := &stack{rec: &recorder{}}
	// Started one after another on the test goroutine: StartBuildkitd fails with t.Fatalf,
	// which must not run on another goroutine (a failed start would leave a nil node).
	s.nodes = make([]*teststack.Buildkitd, nodes)
	for i := range s.nodes {
		s.nodes[i] = teststack.StartBuildkitd(t, fmt.Sprintf("node%d", i))
	}
	s.client = &buildx.Client{DockerConfig: teststack.DockerConfig(t), Run: s.rec.runner(),
		Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	return s
}

func (s *stack) spec(name string, platforms ...string) buildx.BuilderSpec {
	spec := buildx.BuilderSpec{Name: name, Driver: "remote"}
	for i, p := range platforms {
		spec.Nodes = append(spec.Nodes, buildx.NodeSpec{Name: fmt.Sprintf("%s%d", name, i), Endpoint: s.nodes[i].Endpoint, Platform: p})
	}
	return spec
}

func kinds(changes []buildx.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, string(c.Kind)+" "+c.Node)
	}
	return out
}

func TestProvisionIsIdempotent(t *testing.T) {
	s := newStack(t, 3)
	ctx := t.Context()
	full := s.spec("cache", "linux/amd64", "linux/386")
	one := full
	one.Nodes = full.Nodes[:1]
	moved := s.spec("cache", "linux/amd64", "linux/386")
	moved.Nodes[1].Endpoint = s.nodes[2].Endpoint

	steps := []struct {
		name string
		spec buildx.BuilderSpec
		want []string
	}{
		{"create", full, []string{"create cache0", "append cache1"}},
		{"unchanged", full, nil},
		{"node removed from plan", one, []string{"leave cache1"}},
		{"unchanged after leave", one, nil},
		{"node added back", full, []string{"append cache1"}},
		{"endpoint moved", moved, []string{"update cache1"}},
		{"back again", full, []string{"update cache1"}},
		{"unchanged at last", full, nil},
	}
	for _, st := range steps {
		before := len(s.rec.builderChanges())
		changes, err := s.client.Provision(ctx, st.spec)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := kinds(changes); !slices.Equal(got, st.want) {
			t.Fatalf("%s: changes %v, want %v", st.name, got, st.want)
		}
		if issued := s.rec.builderChanges()[before:]; len(issued) != len(st.want) {
			t.Fatalf("%s: issued %d builder commands %v, want %d", st.name, len(issued), issued, len(st.want))
		}
	}

	state, err := s.client.WaitRunning(ctx, "cache", buildx.WaitPolicy{Attempts: 2, Backoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("WaitRunning: %v", err)
	}
	if got := state.Node("cache1").Pinned; !slices.Equal(got, []string{"linux/386"}) {
		t.Errorf("cache1 pinned %v, want [linux/386]", got)
	}
	checks, err := s.client.CheckPlatforms(ctx, full, state)
	if err != nil {
		t.Fatalf("CheckPlatforms: %v", err)
	}
	for _, c := range checks {
		if c.Native != "linux/amd64" || c.Emulated {
			t.Errorf("%s: native %s emulated %v; want native linux/amd64, not emulated", c, c.Native, c.Emulated)
		}
	}
}

func TestEmulationIsDetected(t *testing.T) {
	s := newStack(t, 2)
	ctx := t.Context()
	spec := s.spec("emu", "linux/amd64", "linux/arm64")
	if _, err := s.client.Provision(ctx, spec); err != nil {
		t.Fatal(err)
	}
	state, err := s.client.WaitRunning(ctx, "emu", buildx.WaitPolicy{Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	checks, err := s.client.CheckPlatforms(ctx, spec, state)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 2 || checks[0].Emulated || !checks[1].Emulated {
		t.Fatalf("checks %+v: want emu0 native, emu1 emulated", checks)
	}
	if want := "node emu1 (" + s.nodes[1].Endpoint + ") declared linux/arm64, native linux/amd64"; checks[1].String() != want {
		t.Errorf("check says %q, want %q", checks[1], want)
	}
}

func TestNodeDownFailsNamingNode(t *testing.T) {
	s := newStack(t, 2)
	ctx := t.Context()
	if _, err := s.client.Provision(ctx, s.spec("down", "linux/amd64", "linux/386")); err != nil {
		t.Fatal(err)
	}
	s.nodes[1].Kill()
	start := time.Now()
	_, err := s.client.WaitRunning(ctx, "down", buildx.WaitPolicy{Attempts: 3, Backoff: 200 * time.Millisecond, BootstrapTimeout: 2 * time.Second})
	var down *buildx.NodeNotRunningError
	if !errors.As(err, &down) {
		t.Fatalf("WaitRunning with a killed node: %v, want *NodeNotRunningError", err)
	}
	if down.Node != "down1" || down.Endpoint != s.nodes[1].Endpoint || down.Status != buildx.StatusInactive || down.Checks != 3 {
		t.Errorf("error %+v: want node down1 at %s inactive after 3 checks", down, s.nodes[1].Endpoint)
	}
	for _, want := range []string{"builder down", "node down1", s.nodes[1].Endpoint, "inactive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	t.Logf("node down detected in %s: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestBuildRecordsNodeAndPushesCache(t *testing.T) {
	s := newStack(t, 2)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	ctx := t.Context()
	if _, err := s.client.Provision(ctx, s.spec("b", "linux/amd64", "linux/386")); err != nil {
		t.Fatal(err)
	}
	bctx := teststack.ScratchContext(t, map[string]string{"a.txt": "hello"})
	dir := t.TempDir()
	var wg sync.WaitGroup
	type result struct {
		md  buildx.Metadata
		err error
	}
	platforms := []string{"linux/amd64", "linux/386"}
	results := make([]result, len(platforms))
	for i, p := range platforms {
		tag, err := buildx.CacheTag(p)
		if err != nil {
			t.Fatal(err)
		}
		o := buildx.BuildOptions{
			Builder: "b", Platform: p, Context: bctx,
			BuildArgs:    []buildx.BuildArg{{Key: "PYTHON", Value: "3.12"}},
			CacheRef:     reg.Host + "/demo/ci/python3.12:" + tag,
			MetadataFile: filepath.Join(dir, tag+".json"),
		}
		wg.Go(func() {
			md, err := s.client.Build(ctx, o)
			results[i] = result{md, err}
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("build %s: %v", platforms[i], r.err)
		}
		if want := fmt.Sprintf("b%d", i); r.md.Node != want || r.md.Builder != "b" {
			t.Errorf("build %s ran on %s/%s, want b/%s", platforms[i], r.md.Builder, r.md.Node, want)
		}
	}
	resp, err := http.Get("http://" + reg.Host + "/v2/demo/ci/python3.12/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, tag := range []string{"cache-linux-amd64", "cache-linux-386"} {
		if !strings.Contains(string(body), `"`+tag+`"`) {
			t.Errorf("registry tags %s lack %s", body, tag)
		}
	}
}

// TestEmulationGuardOverTLS provisions a remote builder on a buildkitd that requires client
// certificates, with the TLS files as buildx driver options, and checks that the emulation
// guard reads the node's native platform through TLS with the same files.
func TestEmulationGuardOverTLS(t *testing.T) {
	teststack.Require(t)
	files := teststack.NewTLS(t)
	node := teststack.StartBuildkitdWith(t, "tls", teststack.BuildkitdOptions{TLS: &files})
	client := &buildx.Client{DockerConfig: teststack.DockerConfig(t), Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	ctx := t.Context()
	spec := buildx.BuilderSpec{Name: "tls", Driver: "remote", Nodes: []buildx.NodeSpec{{
		Name: "tls0", Endpoint: node.Endpoint, Platform: "linux/386",
		DriverOpts: map[string]string{"cacert": files.CACert, "cert": files.ClientCert, "key": files.ClientKey, "servername": "localhost"},
	}}}
	if _, err := client.Provision(ctx, spec); err != nil {
		t.Fatalf("provision a TLS remote builder: %v", err)
	}
	state, err := client.WaitRunning(ctx, "tls", buildx.WaitPolicy{Attempts: 2, Backoff: 200 * time.Millisecond, BootstrapTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("wait for the TLS node: %v", err)
	}
	checks, err := client.CheckPlatforms(ctx, spec, state)
	if err != nil {
		t.Fatalf("emulation guard over TLS: %v", err)
	}
	if len(checks) != 1 || checks[0].Native != "linux/amd64" || checks[0].Emulated {
		t.Fatalf("checks %+v: want tls0 declared linux/386, native linux/amd64, not emulated", checks)
	}
	// Without the client certificate the node refuses the guard: the TLS flags are what
	// reached it above, not a plaintext fallback.
	bare := *state.Node("tls0")
	bare.DriverOpts = map[string]string{"cacert": files.CACert}
	if _, err := client.NativePlatform(ctx, "remote", bare); err == nil {
		t.Error("the guard reached a node requiring client certificates without one")
	}
}
