package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/statedir"
)

// buildxCache runs one per-platform `docker buildx build` with registry cache and checks its
// result: the cache ref's digest before and after (a ref missing after the build fails the
// attempt, since buildx may exit 0 when a cache export failed), and the node that really
// built it (buildx.build.ref in the metadata file) against the node pinned to the platform.
type buildxCache struct {
	*plan.BuildxCacheAction
	declared *plan.Builder // the plan's declaration of its builder; nil outside a plan
}

func (b buildxCache) run(ctx context.Context, t *Tools, a *Attempt) error {
	act := b.BuildxCacheAction
	reg := t.registryClient(a.Log)
	before, _, err := reg.Digest(ctx, act.CacheRef)
	if err != nil {
		return fmt.Errorf("read cache %s before the build: %w", act.CacheRef, err)
	}
	// The look before the push is recorded too ("" when absent): the push that follows is
	// then a change dated between the two looks, even for a tag this run creates.
	a.observeTag(act.CacheRef, before, false)
	// Absolute: buildx runs in the instance's workdir, not ours.
	mdFile, err := filepath.Abs(metadataFile(a))
	if err != nil {
		return fmt.Errorf("metadata file path: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(mdFile), 0o755); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	md, node, err := b.buildOnPool(ctx, t, a, mdFile)
	if err != nil {
		return err
	}
	after, found, err := reg.Digest(ctx, act.CacheRef)
	if err != nil {
		return fmt.Errorf("verify cache %s after the build: %w", act.CacheRef, err)
	}
	if found {
		a.observeTag(act.CacheRef, after, true)
	}
	a.Record(func(s *history.Step) {
		s.Node = md.Node
		s.Caches = setCache(s.Caches, history.Cache{Ref: act.CacheRef, Before: before, After: after, Changed: found && before != after, Verified: found})
	})
	if !found {
		return fmt.Errorf("cache %s missing in the registry after the build of %s (the cache export failed or went elsewhere)", act.CacheRef, act.Platform)
	}
	a.Log.Info("cache verified", "ref", act.CacheRef, "node", md.Node, "digest", after, "changed", before != after)
	if md.Node != node {
		msg := fmt.Sprintf("build of %s on builder %s ran on node %s, not on %s, the node pinned to %s it was given", act.Platform, act.Builder, md.Node, node, act.Platform)
		if t.emulation(a, act.Builder) == plan.EmulationForbid {
			return fmt.Errorf("emulation: forbid: %s", msg)
		}
		a.Warn(msg)
	}
	return nil
}

// buildOnPool builds on a free, live node of the platform's pool, holding one slot of that
// node for the build. A build that fails because its node went down (the node no longer
// shows running) marks the node down for the rest of the run, with a warning, and is built
// again on another live node of the pool; with none left the attempt fails. It returns the
// build's metadata and the node it was given.
func (b buildxCache) buildOnPool(ctx context.Context, t *Tools, a *Attempt, mdFile string) (buildx.Metadata, string, error) {
	act := b.BuildxCacheAction
	pool := a.builder(act)
	c := t.buildxClient(a)
	slots, health := a.slots, a.health
	if slots == nil {
		slots = newSlotManager()
	}
	if health == nil {
		health = &nodeHealth{} // an attempt outside a run: what it finds is its own
	}
	for {
		slot, err := acquireSlot(ctx, slots, a.StateDir, pool, act.Platform, health)
		if err != nil {
			return buildx.Metadata{}, "", err
		}
		a.Log.Info("node slot acquired", "builder", act.Builder, "node", slot.Node.Name, "slot", slot.Slot, "via", slot.Builder, "waited", slot.Waited.Round(time.Millisecond))
		_ = os.Remove(mdFile) // a stale file from an earlier try must not vouch for this one
		o := buildOptions(act, mdFile)
		o.Builder = slot.Builder
		md, err := c.Build(ctx, o)
		if err == nil {
			slot.release()
			return md, slot.Node.Name, nil
		}
		// The slot is kept while the node is checked: released first, it would go to the
		// next waiter, node down or not.
		gone := ctx.Err() == nil && nodeGone(ctx, c, slot)
		if gone && health.markDown(act.Builder, slot.Node.Name, err.Error()) {
			a.Warn(fmt.Sprintf("builder %s node %s (%s) went down during the build of %s; the run skips it from now on", act.Builder, slot.Node.Name, slot.Node.Endpoint, act.Platform))
			a.reportNodeDown(history.NodeDown{Builder: act.Builder, Node: slot.Node.Name, Platform: act.Platform, Endpoint: slot.Node.Endpoint, Found: history.NodeFoundInBuild, Status: lastLine(err.Error())})
		}
		slot.release()
		if !gone {
			return md, slot.Node.Name, err
		}
		a.Log.Warn("build lost its node, trying another node of the pool", "node", slot.Node.Name, "err", lastLine(err.Error()))
	}
}

// nodeGone reports whether the slot's node no longer shows running in `docker buildx ls`.
func nodeGone(ctx context.Context, c *buildx.Client, slot *nodeSlot) bool {
	st, found, err := c.Builder(ctx, slot.Builder)
	if err != nil || !found {
		return false // cannot tell: the build's own error stands
	}
	n := st.Node(slot.Node.Name)
	return n != nil && n.Status != buildx.StatusRunning
}

// lastLine is the last line of s, trimmed.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// builder is the plan's declaration of act's builder; without one (an attempt made outside
// a plan), the builder as the action knows it: its one node pinned to the platform.
func (a *Attempt) builder(act *plan.BuildxCacheAction) *plan.Builder {
	if b := declaredBuilder(a.Plan, act.Builder); b != nil {
		return b
	}
	return &plan.Builder{Name: act.Builder, Nodes: []plan.Node{{Name: act.Node, Platform: act.Platform, MaxParallel: 1}}}
}

// declaredBuilder is p's declaration of builder name, or nil.
func declaredBuilder(p *plan.Plan, name string) *plan.Builder {
	if p == nil {
		return nil
	}
	return p.Builders[name]
}

func buildOptions(act *plan.BuildxCacheAction, mdFile string) buildx.BuildOptions {
	o := buildx.BuildOptions{
		Builder: act.Builder, Platform: act.Platform, Context: act.Context, File: act.File, Target: act.Target,
		CacheRef: act.CacheRef, MetadataFile: mdFile,
	}
	for _, kv := range act.BuildArgs {
		o.BuildArgs = append(o.BuildArgs, buildx.BuildArg{Key: kv.Key, Value: kv.Value})
	}
	return o
}

// emulation is the builder's emulation policy, forbid when unknown.
func (t *Tools) emulation(a *Attempt, builder string) plan.Emulation {
	if a.Plan != nil {
		if b := a.Plan.Builders[builder]; b != nil && b.Emulation != "" {
			return b.Emulation
		}
	}
	return plan.EmulationForbid
}

// metadataFile is DIR/runs/RUN/INSTANCE.json, the instance id made safe for a file name.
func metadataFile(a *Attempt) string {
	return statedir.Dir{Root: a.StateDir}.Metadata(a.RunID, a.Instance.ID)
}

// setCache replaces the entry for c.Ref (an earlier attempt's) or appends it.
func setCache(caches []history.Cache, c history.Cache) []history.Cache {
	for i := range caches {
		if caches[i].Ref == c.Ref {
			caches[i] = c
			return caches
		}
	}
	return append(caches, c)
}

// describe lists the build with the argv the run executes (the metadata file's path
// stands in as STATE/runs/RUN/INSTANCE.json) between the registry reads that check it. On a
// pooled platform it names the pool the build takes a slot of, and builds through the first
// node's own builder, saying what changes on the others.
func (b buildxCache) describe(t *Tools) []Op {
	o := buildOptions(b.BuildxCacheAction, "STATE/runs/RUN/INSTANCE.json")
	var nodes []plan.Node
	if b.declared != nil {
		nodes = poolNodes(b.declared, b.Platform)
	}
	if len(nodes) < 2 {
		return []Op{
			{Text: "HEAD " + b.CacheRef, Note: "digest before"},
			{Argv: buildx.BuildArgv(t.Docker, o)},
			{Text: "HEAD " + b.CacheRef, Note: "digest after: must exist"},
			{Text: "check buildx.build.ref names node " + b.Node},
		}
	}
	var slots, others []string
	for _, n := range nodes {
		slots = append(slots, fmt.Sprintf("node %s (max_parallel %d) via builder %s", n.Name, max(n.MaxParallel, 1), poolBuilderName(b.declared, n)))
		if n.Name != nodes[0].Name {
			others = append(others, fmt.Sprintf("--builder=%s on %s", poolBuilderName(b.declared, n), n.Name))
		}
	}
	o.Builder = poolBuilderName(b.declared, nodes[0])
	return []Op{
		{Text: "HEAD " + b.CacheRef, Note: "digest before"},
		{Text: fmt.Sprintf("wait for a free slot of builder %s's %s pool, first come first served: %s", b.Builder, b.Platform, strings.Join(slots, ", "))},
		{Argv: buildx.BuildArgv(t.Docker, o), Note: "given " + nodes[0].Name + "; " + strings.Join(others, ", ")},
		{Text: "HEAD " + b.CacheRef, Note: "digest after: must exist"},
		{Text: fmt.Sprintf("check buildx.build.ref names the node given (%s)", strings.Join(nodeNames(nodes), " or "))},
	}
}
