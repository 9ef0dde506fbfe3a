package executor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// cacheStack is the real stack for the built-in buildx actions: two buildkitd nodes, a
// registry, a private DOCKER_CONFIG, and attempts built by hand (the engine's job in
// production) whose Exec runs real processes and records every argv.
type cacheStack struct {
	t     *testing.T
	tools *Tools
	nodes []*teststack.Buildkitd
	reg   *teststack.Registry
	state string
	work  string

	mu       sync.Mutex
	commands [][]string
	warnings []string
	steps    map[string]*history.Step
}

func newCacheStack(t *testing.T) *cacheStack {
	t.Helper()
	teststack.Require(t)
	s := &cacheStack{t: t, state: t.TempDir(), steps: map[string]*history.Step{}, nodes: make([]*teststack.Buildkitd, 2)}
	// Started one after another on the test goroutine: StartBuildkitd fails with t.Fatalf,
	// which must not run on another goroutine (a failed start would leave a nil node).
	for i := range s.nodes {
		s.nodes[i] = teststack.StartBuildkitd(t, fmt.Sprintf("n%d", i))
	}
	s.reg = teststack.StartRegistry(t, teststack.RegistryOptions{})
	s.tools = &Tools{
		DockerConfig:         teststack.DockerConfig(t),
		PlainHTTPRegistries:  []string{"127.0.0.1"},
		NodeWait:             buildx.WaitPolicy{Attempts: 3, Backoff: 200 * time.Millisecond, BootstrapTimeout: 2 * time.Second},
		RegistryRetryWaitMin: 50 * time.Millisecond,
	}
	// Two Python versions: one file each, picked by a build arg.
	s.work = teststack.ScratchContext(t, map[string]string{"py3.11.txt": "3.11", "py3.12.txt": "3.12"})
	df := "FROM scratch\nARG PYTHON\nCOPY py${PYTHON}.txt /python.txt\n"
	if err := os.WriteFile(filepath.Join(s.work, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *cacheStack) builder(emulation plan.Emulation, platforms ...string) *plan.Builder {
	b := &plan.Builder{Name: "cache", Driver: "remote", Emulation: emulation}
	for i, p := range platforms {
		b.Nodes = append(b.Nodes, plan.Node{Name: fmt.Sprintf("cache%d", i), Endpoint: s.nodes[i].Endpoint, Platform: p})
	}
	return b
}

// attempt is what the engine would hand an action for instance id.
func (s *cacheStack) attempt(p *plan.Plan, run, id string) *Attempt {
	log := slog.New(slog.NewTextHandler(s.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})).With("step", id)
	return &Attempt{
		RunID: run, Plan: p, Instance: &plan.Instance{ID: id, Workdir: s.work}, N: 1, Log: log, Output: os.Stderr,
		StateDir: s.state,
		Exec: func(ctx context.Context, dir string, argv []string, extraEnv ...string) (ExitStatus, error) {
			s.mu.Lock()
			s.commands = append(s.commands, argv)
			s.mu.Unlock()
			if dir == "" {
				dir = s.work
			}
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Dir, cmd.Env = dir, append(os.Environ(), extraEnv...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			out, err := cmd.CombinedOutput()
			if _, ok := err.(*exec.ExitError); ok {
				s.t.Logf("%s failed:\n%s", strings.Join(argv, " "), out)
				return ExitStatus{Code: cmd.ProcessState.ExitCode()}, nil
			}
			return ExitStatus{}, err
		},
		Record: func(f func(*history.Step)) {
			s.mu.Lock()
			defer s.mu.Unlock()
			st := s.steps[run+"/"+id]
			if st == nil {
				st = &history.Step{Instance: id}
				s.steps[run+"/"+id] = st
			}
			f(st)
		},
		Warn: func(msg string) {
			s.mu.Lock()
			s.warnings = append(s.warnings, msg)
			s.mu.Unlock()
		},
	}
}

// issued lists the commands run so far whose third word is one of words.
func (s *cacheStack) issued(words ...string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.commands {
		for _, w := range words {
			if len(a) > 2 && a[2] == w {
				out = append(out, strings.Join(a[1:], " "))
			}
		}
	}
	return out
}

// refresh runs what a plan's graph would for 2 Python versions x the builder's platforms:
// provision, one cache build per instance (platforms side by side, Python versions one
// after another per node), then verify of all refs.
func (s *cacheStack) refresh(ctx context.Context, p *plan.Plan, run string) ([]string, error) {
	b := p.Builders["cache"]
	if err := (provision{&plan.ProvisionAction{Builder: b}}).run(ctx, s.tools, s.attempt(p, run, "provision[cache]")); err != nil {
		return nil, err
	}
	var refs []string
	errs := make([]error, len(b.Nodes))
	var wg sync.WaitGroup
	for i, n := range b.Nodes {
		tag, err := buildx.CacheTag(n.Platform)
		if err != nil {
			return nil, err
		}
		var acts []*plan.BuildxCacheAction
		for _, py := range []string{"3.11", "3.12"} {
			ref := fmt.Sprintf("%s/demo/main/ci/python%s:%s", s.reg.Host, py, tag)
			refs = append(refs, ref)
			acts = append(acts, &plan.BuildxCacheAction{
				Builder: "cache", Node: n.Name, Platform: n.Platform, Context: ".",
				BuildArgs: []plan.KV{{Key: "PYTHON", Value: py}}, CacheRef: ref,
			})
		}
		wg.Go(func() {
			for _, act := range acts {
				id := fmt.Sprintf("refresh-cache[python=%s][%s]", act.BuildArgs[0].Value, act.Platform)
				if err := (buildxCache{BuildxCacheAction: act}).run(ctx, s.tools, s.attempt(p, run, id)); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return refs, verifyCache{&plan.VerifyAction{Refs: refs}}.run(ctx, s.tools, s.attempt(p, run, "verify-cache"))
}

func TestCacheRefreshTwoPythonsTwoPlatforms(t *testing.T) {
	s := newCacheStack(t)
	ctx := t.Context()
	p := &plan.Plan{Name: "demo", Builders: map[string]*plan.Builder{"cache": s.builder(plan.EmulationForbid, "linux/amd64", "linux/386")}}

	start := time.Now()
	refs, err := s.refresh(ctx, p, "R1")
	first := time.Since(start)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if len(refs) != 4 {
		t.Fatalf("refs %v, want 4", refs)
	}
	changesAfterFirst := s.issued("create", "rm")
	if len(changesAfterFirst) != 2 {
		t.Errorf("first run builder commands %v, want create + append", changesAfterFirst)
	}
	verified := s.steps["R1/verify-cache"]
	if verified == nil || len(verified.Caches) != 4 {
		t.Fatalf("verify recorded %+v, want 4 caches", verified)
	}
	digests := map[string]string{}
	for _, c := range verified.Caches {
		if !c.Verified || !strings.HasPrefix(c.After, "sha256:") {
			t.Errorf("cache %+v not verified", c)
		}
		digests[c.Ref] = c.After
	}
	for key, st := range s.steps {
		if !strings.HasPrefix(key, "R1/refresh-cache") {
			continue
		}
		wantNode := "cache0"
		if strings.Contains(key, "linux/386") {
			wantNode = "cache1"
		}
		if st.Node != wantNode || len(st.Caches) != 1 || !st.Caches[0].Changed || st.Caches[0].Before != "" {
			t.Errorf("%s: node %s caches %+v; want built on %s, new cache recorded as changed", key, st.Node, st.Caches, wantNode)
		}
	}

	start = time.Now()
	if _, err := s.refresh(ctx, p, "R2"); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	second := time.Since(start)
	t.Logf("2 Python x 2 platforms: first run %s, second run (cache reused) %s", first.Round(time.Millisecond), second.Round(time.Millisecond))
	if got := s.issued("create", "rm"); len(got) != len(changesAfterFirst) {
		t.Errorf("second run issued builder changes: %v", got[len(changesAfterFirst):])
	}
	for key, st := range s.steps {
		if !strings.HasPrefix(key, "R2/refresh-cache") {
			continue
		}
		c := st.Caches[0]
		if c.Changed || c.Before != digests[c.Ref] || c.After != digests[c.Ref] {
			t.Errorf("%s: cache %+v; want unchanged %s (reused)", key, c, digests[c.Ref])
		}
	}
	if len(s.warnings) > 0 {
		t.Errorf("warnings: %v", s.warnings)
	}
}

func TestCacheRefreshNodeDownFailsBeforeAnyBuild(t *testing.T) {
	s := newCacheStack(t)
	p := &plan.Plan{Name: "demo", Builders: map[string]*plan.Builder{"cache": s.builder(plan.EmulationForbid, "linux/amd64", "linux/386")}}
	s.nodes[1].Kill()
	_, err := s.refresh(t.Context(), p, "R1")
	if err == nil {
		t.Fatal("refresh with a killed node succeeded")
	}
	for _, want := range []string{"builder cache", "node cache1", s.nodes[1].Endpoint, "inactive", "nothing built"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if builds := s.issued("build"); len(builds) > 0 {
		t.Errorf("builds ran: %v", builds)
	}
}

func TestCacheRefreshEmulation(t *testing.T) {
	tests := []struct {
		emulation plan.Emulation
		wantErr   bool
		warnings  int
	}{
		{plan.EmulationForbid, true, 0},
		{plan.EmulationWarn, false, 1},
		{plan.EmulationAllow, false, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.emulation), func(t *testing.T) {
			s := newCacheStack(t)
			b := s.builder(tt.emulation, "linux/amd64", "linux/arm64")
			p := &plan.Plan{Name: "demo", Builders: map[string]*plan.Builder{"cache": b}}
			err := provision{&plan.ProvisionAction{Builder: b}}.run(t.Context(), s.tools, s.attempt(p, "R1", "provision[cache]"))
			if tt.wantErr {
				want := "emulation: forbid refuses the run before any build: builder cache node cache1 (" + s.nodes[1].Endpoint + ") declared linux/arm64, native linux/amd64"
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("provision: %v, want %q", err, want)
				}
			} else if err != nil {
				t.Fatalf("provision: %v", err)
			}
			if len(s.warnings) != tt.warnings {
				t.Errorf("warnings %v, want %d", s.warnings, tt.warnings)
			}
		})
	}
}
