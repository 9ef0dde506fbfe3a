package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/statedir"
)

// A builder's nodes pinned to one platform are that platform's pool. buildx itself cannot
// spread one platform's builds over several nodes: its resolver
// (docker/buildx build/resolver/driver.go, nodeResolver.get) sends a platform to the first
// node whose pinned platforms match, always the same one, and fails the build if that node
// does not boot. So a build of a pooled platform goes through a single-node builder per node,
// named BUILDER.NODE (poolBuilderName), whose node has the same name as in the full builder:
// the docker-container and kubernetes drivers name their container or deployment after the
// node (buildx_buildkit_NODE), so both builders reach the same BuildKit state, and the
// registry cache (--cache-from/--cache-to REF) does not depend on the builder's name at all.
// A platform with one node keeps building through the full builder, by its name.

// poolNodes returns the nodes of b pinned to platform, in declared order.
func poolNodes(b *plan.Builder, platform string) []plan.Node {
	var out []plan.Node
	for _, n := range b.Nodes {
		if n.Platform == platform {
			out = append(out, n)
		}
	}
	return out
}

// poolBuilderName is the buildx builder a build on node runs through: the single-node
// builder BUILDER.NODE when node's platform has a pool, else the builder itself.
func poolBuilderName(b *plan.Builder, node plan.Node) string {
	if len(poolNodes(b, node.Platform)) > 1 {
		return b.Name + "." + node.Name
	}
	return b.Name
}

// nodeHealth is what a run knows about its builders' nodes: those found down (by
// provisioning, or after a build lost its node), which the run's later builds skip.
type nodeHealth struct {
	mu   sync.Mutex
	down map[string]string // BUILDER/NODE -> why
}

// markDown records node of builder as down; it reports whether that is news.
func (h *nodeHealth) markDown(builder, node, why string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == nil {
		h.down = map[string]string{}
	}
	k := builder + "/" + node
	if _, ok := h.down[k]; ok {
		return false
	}
	h.down[k] = why
	return true
}

func (h *nodeHealth) isDown(builder, node string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.down[builder+"/"+node]
	return ok
}

// nodeSlot is one build slot of one node (statedir.Dir.NodeSlotLock), held for one build.
type nodeSlot struct {
	Node    plan.Node
	Slot    int
	Builder string // the buildx builder to build through (poolBuilderName)
	Waited  time.Duration
	unlock  func()
}

func (s *nodeSlot) release() {
	if s != nil && s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// acquireSlot takes a free slot of a live node of b pinned to platform, preferring nodes in
// declared order, waiting in m's queue (first come first served) until one is free or ctx
// ends. A node marked down in h meanwhile is not given.
func acquireSlot(ctx context.Context, m *slotManager, stateDir string, b *plan.Builder, platform string, h *nodeHealth) (*nodeSlot, error) {
	start := time.Now()
	dir := statedir.Dir{Root: stateDir}
	if err := os.MkdirAll(dir.Locks(), 0o750); err != nil {
		return nil, fmt.Errorf("create locks directory: %w", err)
	}
	nodes := poolNodes(b, platform)
	if len(nodes) == 0 {
		return nil, fmt.Errorf("builder %s has no node pinned to %s", b.Name, platform)
	}
	var want []slotChoice
	for _, n := range nodes {
		for slot := range max(n.MaxParallel, 1) {
			want = append(want, slotChoice{Path: dir.NodeSlotLock(b.Name, n.Name, slot), Node: n, Slot: slot})
		}
	}
	live := func(n plan.Node) bool { return !h.isDown(b.Name, n.Name) }
	c, err := m.acquire(ctx, want, live)
	switch {
	case errors.Is(err, errNoUsableSlot):
		return nil, fmt.Errorf("builder %s has no live node for %s (down: %s)", b.Name, platform, strings.Join(nodeNames(nodes), ", "))
	case err != nil && ctx.Err() != nil:
		var up []string
		for _, n := range nodes {
			if live(n) {
				up = append(up, n.Name)
			}
		}
		return nil, fmt.Errorf("wait for a free node of builder %s for %s (%s): %w", b.Name, platform, strings.Join(up, ", "), err)
	case err != nil:
		return nil, err
	}
	return &nodeSlot{Node: c.Node, Slot: c.Slot, Builder: poolBuilderName(b, c.Node), Waited: time.Since(start),
		unlock: func() { m.release(c.Path) }}, nil
}

// lockWholeBuilder holds slot 0 of every node of b, in declared order (so two holders never
// deadlock), for a step that drives the builder itself (a run step with builder:): its
// builds go wherever buildx sends them, so it has the builder to itself. It queues for each
// slot with the builds, first come first served.
func lockWholeBuilder(ctx context.Context, m *slotManager, stateDir string, b *plan.Builder) (unlock func(), err error) {
	dir := statedir.Dir{Root: stateDir}
	if err := os.MkdirAll(dir.Locks(), 0o750); err != nil {
		return nil, fmt.Errorf("create locks directory: %w", err)
	}
	var held []string
	unlock = func() {
		for _, path := range slices.Backward(held) {
			m.release(path)
		}
	}
	for _, n := range b.Nodes {
		c, err := m.acquire(ctx, []slotChoice{{Path: dir.NodeSlotLock(b.Name, n.Name, 0), Node: n}}, nil)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("lock node %s of builder %s: %w", n.Name, b.Name, err)
		}
		held = append(held, c.Path)
	}
	return unlock, nil
}

func nodeNames(nodes []plan.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}
