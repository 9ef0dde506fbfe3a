package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// provision makes the real buildx builder match the plan (create, --append, --leave, or
// rm + create on a driver change; nothing when it already matches), requires every node
// running (bootstrapping and retrying with backoff), then applies the emulation guard: a
// node pinned to a platform its worker does not run natively is refused under forbid,
// warned about under warn. All of it happens before any build uses the builder.
type provision struct{ *plan.ProvisionAction }

// provisionOutcome is what provisioning a builder found, for every run sharing it to apply to
// its own attempt (provisionShare).
type provisionOutcome struct {
	changed bool                   // provisioning changed the builder
	down    []downNode             // pool nodes not running, skipped
	checks  []buildx.PlatformCheck // the emulation guard, per running node
	err     error                  // the builder is not usable; down and checks may be partial
}

// downNode is a pool node found not running, and its platform.
type downNode struct {
	buildx.NodeState
	Platform string
}

// provisionShare lets the runs of one engine that provision the same builder at the same
// time (the daemon starting several plans on one shared builder) share one provisioning:
// the first holds the builder's lock and provisions; those that arrive meanwhile wait for
// it and take its outcome, instead of queueing for the lock to issue the same commands and
// the same checks again, one after another, while the nodes wait. A later run provisions
// for itself, as every run does. Other processes still wait on the lock.
type provisionShare struct {
	mu      sync.Mutex
	flights map[string]*provisionFlight // by provisionKey
}

type provisionFlight struct {
	done      chan struct{} // closed when out is set
	out       provisionOutcome
	abandoned bool // the provisioning run's context ended: the others provision for themselves
}

func newProvisionShare() *provisionShare {
	return &provisionShare{flights: map[string]*provisionFlight{}}
}

// join returns the provisioning in flight for key, or starts one (leader true).
func (s *provisionShare) join(key string) (f *provisionFlight, leader bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.flights[key]; f != nil {
		return f, false
	}
	f = &provisionFlight{done: make(chan struct{})}
	s.flights[key] = f
	return f, true
}

func (s *provisionShare) finish(key string, f *provisionFlight, out provisionOutcome, abandoned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.flights, key)
	f.out, f.abandoned = out, abandoned
	close(f.done)
}

// provisionKey identifies a provisioning: the builder as declared (wherever it is declared:
// positions left out) and the docker config its state lives in.
func provisionKey(b *plan.Builder, dockerConfig string) string {
	c := *b
	c.Pos = plan.Pos{}
	c.Nodes = slices.Clone(b.Nodes)
	for i := range c.Nodes {
		c.Nodes[i].Pos = plan.Pos{}
	}
	j, _ := json.Marshal(c) // plain data: cannot fail; map keys come sorted
	return dockerConfig + "\x00" + string(j)
}

func (p provision) run(ctx context.Context, t *Tools, a *Attempt) error {
	b := p.Builder
	if a.provisions == nil { // an attempt outside an engine: nobody to share with
		return p.apply(a, p.provisionLocked(ctx, t, a))
	}
	key := provisionKey(b, t.DockerConfig)
	for {
		f, leader := a.provisions.join(key)
		if leader {
			out := p.provisionLocked(ctx, t, a)
			a.provisions.finish(key, f, out, ctx.Err() != nil)
			return p.apply(a, out)
		}
		a.Log.Info("another run of this process is provisioning the builder: waiting for its outcome", "builder", b.Name)
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("wait for another run's provisioning of builder %s: %w", b.Name, context.Cause(ctx))
		}
		if f.abandoned {
			continue // that run was cancelled: provision for this one
		}
		a.Log.Info("builder provisioned by another run at the same time: taking its outcome", "builder", b.Name)
		return p.apply(a, f.out)
	}
}

// provisionLocked provisions the builder under its lock (statedir.Dir.BuilderLock, shared
// with other processes) and returns what it found.
func (p provision) provisionLocked(ctx context.Context, t *Tools, a *Attempt) provisionOutcome {
	b := p.Builder
	start := time.Now()
	unlock, err := lockBuilder(ctx, a.StateDir, b.Name)
	if err != nil {
		return provisionOutcome{err: err}
	}
	defer unlock()
	if waited := time.Since(start); waited > time.Second {
		a.Log.Info("builder lock acquired after waiting", "builder", b.Name, "waited", waited.Round(time.Millisecond))
	}
	c := t.buildxClient(a)
	// The builder and its pooled nodes' own builders, compared, converged and checked
	// together: one `docker buildx ls` for all of them, whatever the pool's size.
	specs := append([]buildx.BuilderSpec{builderSpec(b)}, poolSpecs(b)...)
	changes, states, err := c.ProvisionAll(ctx, specs)
	if err != nil {
		return provisionOutcome{err: err}
	}
	out := provisionOutcome{changed: len(changes) > 0}
	// Every node must be running, each seen through a builder it is in: the builder itself,
	// else its own single-node builder. A pool's node that is not running is skipped by the
	// run, with a warning, while its platform has another running node.
	names := []string{b.Name}
	inMain := map[string]bool{}
	for _, n := range specs[0].Nodes {
		inMain[n.Name] = true
	}
	for _, ps := range specs[1:] {
		if !inMain[ps.Nodes[0].Name] {
			names = append(names, ps.Name)
		}
	}
	states, waitErr := c.WaitRunningAll(ctx, names, states, t.NodeWait)
	if states == nil {
		out.err = fmt.Errorf("builder %s not ready, nothing built: %w", b.Name, waitErr)
		return out
	}
	state := states[b.Name]
	nodes := map[string]buildx.NodeState{}
	for _, name := range names {
		for _, n := range states[name].Nodes {
			if _, seen := nodes[n.Name]; !seen {
				nodes[n.Name] = n
			}
		}
	}
	down, err := downNodes(b, nodes, waitErr)
	if err != nil {
		out.err = fmt.Errorf("builder %s not ready, nothing built: %w", b.Name, err)
		return out
	}
	for _, n := range down {
		out.down = append(out.down, downNode{NodeState: n, Platform: nodePlatform(b, n.Name)})
	}
	// The emulation guard asks every running node's worker for its native platform.
	live := &buildx.BuilderState{Name: b.Name, Driver: state.Driver}
	all := buildx.BuilderSpec{Name: b.Name, Driver: b.Driver}
	for _, n := range b.Nodes {
		if slices.ContainsFunc(down, func(d buildx.NodeState) bool { return d.Name == n.Name }) {
			continue
		}
		live.Nodes = append(live.Nodes, nodes[n.Name])
		all.Nodes = append(all.Nodes, nodeSpec(n))
	}
	out.checks, out.err = c.CheckPlatforms(ctx, all, live)
	return out
}

// apply records a provisioning's outcome on this run's attempt: pool nodes down are skipped
// by the run (warning, observer), the emulation guard's verdict is applied per node, and the
// attempt fails when the builder is not usable.
func (p provision) apply(a *Attempt, out provisionOutcome) error {
	b := p.Builder
	if !out.changed && out.err == nil {
		a.Log.Info("builder matches the plan", "builder", b.Name)
	}
	for _, n := range out.down {
		if a.health != nil {
			a.health.markDown(b.Name, n.Name, n.Status)
		}
		a.Warn(fmt.Sprintf("builder %s node %s (%s) is %s, not running: skipped by this run; %s builds on the rest of its pool", b.Name, n.Name, n.Endpoint, n.Status, n.Platform))
		a.reportNodeDown(history.NodeDown{Builder: b.Name, Node: n.Name, Platform: n.Platform, Endpoint: n.Endpoint, Found: history.NodeFoundAtProvisioning, Status: n.Status})
	}
	if out.err != nil {
		return out.err
	}
	var refused []string
	for _, ch := range out.checks {
		a.Log.Info("builder node", "builder", b.Name, "node", ch.Node, "endpoint", ch.Endpoint, "declared", ch.Declared, "native", ch.Native)
		if !ch.Emulated {
			continue
		}
		msg := fmt.Sprintf("builder %s %s: builds for %s would run in emulation", b.Name, ch, ch.Declared)
		switch b.Emulation {
		case plan.EmulationAllow:
			a.Log.Info(msg + " (emulation: allow)")
		case plan.EmulationWarn:
			a.Warn(msg)
		default: // forbid, and the safe reading of anything unset
			refused = append(refused, msg)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("emulation: forbid refuses the run before any build: %s", strings.Join(refused, "; "))
	}
	return nil
}

// downNodes returns the nodes of b that are not running (nodes: by name, as buildx shows
// them), when every platform b declares still has a running node; otherwise it fails with
// waitErr, the first node found not running.
func downNodes(b *plan.Builder, nodes map[string]buildx.NodeState, waitErr error) ([]buildx.NodeState, error) {
	if waitErr == nil {
		return nil, nil
	}
	var notRunning *buildx.NodeNotRunningError
	if !errors.As(waitErr, &notRunning) {
		return nil, waitErr
	}
	live := map[string]bool{}
	var down []buildx.NodeState
	for _, n := range b.Nodes {
		ns, ok := nodes[n.Name]
		if ok && ns.Status == buildx.StatusRunning {
			live[n.Platform] = true
			continue
		}
		if !ok {
			ns = buildx.NodeState{Name: n.Name, Endpoint: n.Endpoint, Status: "missing"}
		}
		down = append(down, ns)
	}
	for _, n := range b.Nodes {
		if !live[n.Platform] {
			return nil, fmt.Errorf("no running node for %s: %w", n.Platform, waitErr)
		}
	}
	return down, nil
}

// compareNote says what provisioning's one `docker buildx ls` compares.
func compareNote(b *plan.Builder) string {
	if n := len(poolSpecs(b)); n > 0 {
		return fmt.Sprintf("compare builder %s and its %d pooled nodes' own builders with the plan, all in this one call; then only the missing of:", b.Name, n)
	}
	return "compare builder " + b.Name + " with the plan; then only the missing of:"
}

func nodePlatform(b *plan.Builder, node string) string {
	for _, n := range b.Nodes {
		if n.Name == node {
			return n.Platform
		}
	}
	return ""
}

// describe lists the commands provisioning may run: each buildx create of the builder as
// declared (only the missing ones run, or rm + create on a driver change), the bootstrap of a
// node that is not running, and the emulation check of each node.
func (p provision) describe(t *Tools) []Op {
	b := p.Builder
	docker := t.docker()
	ops := []Op{{Argv: buildx.LsArgv(docker), Note: compareNote(b)},
		{Argv: buildx.ContextRmArgv(docker, b.Name), Note: "only before a create, when a docker context of the builder's name is in its way and is a copy of the default context (breeze --builder makes one)"}}
	for _, ch := range buildx.Diff(docker, builderSpec(b), nil) {
		ops = append(ops, Op{Argv: ch.Argv})
	}
	for _, ps := range poolSpecs(b) {
		for _, ch := range buildx.Diff(docker, ps, nil) {
			ops = append(ops, Op{Argv: ch.Argv, Note: "the node's own builder: builds of a pooled platform go through it"})
		}
	}
	ops = append(ops, Op{Argv: buildx.BootstrapArgv(docker, b.Name), Note: "only if a node is not running; every node must be running"})
	for _, n := range b.Nodes {
		ops = append(ops, Op{Text: fmt.Sprintf("check node %s native platform is %s (emulation: %s)", n.Name, n.Platform, b.Emulation)})
	}
	return ops
}
