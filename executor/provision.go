package executor

import (
	"context"
	"fmt"
	"strings"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/plan"
)

// provision makes the real buildx builder match the plan (create, --append, --leave, or
// rm + create on a driver change; nothing when it already matches), requires every node
// running (bootstrapping and retrying with backoff), then applies the emulation guard: a
// node pinned to a platform its worker does not run natively is refused under forbid,
// warned about under warn. All of it happens before any build uses the builder.
type provision struct{ *plan.ProvisionAction }

func (p provision) run(ctx context.Context, t *Tools, a *Attempt) error {
	b := p.Builder
	spec := builderSpec(b)
	c := t.buildxClient(a)
	changes, err := c.Provision(ctx, spec)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		a.Log.Info("builder matches the plan", "builder", b.Name)
	}
	state, err := c.WaitRunning(ctx, b.Name, t.NodeWait)
	if err != nil {
		return fmt.Errorf("builder %s not ready, nothing built: %w", b.Name, err)
	}
	checks, err := c.CheckPlatforms(ctx, spec, state)
	if err != nil {
		return err
	}
	var refused []string
	for _, ch := range checks {
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

// describe lists the commands provisioning may run: each buildx create of the builder as
// declared (only the missing ones run, or rm + create on a driver change), the bootstrap of a
// node that is not running, and the emulation check of each node.
func (p provision) describe(t *Tools) []Op {
	b := p.Builder
	docker := t.docker()
	ops := []Op{{Argv: buildx.LsArgv(docker), Note: "compare builder " + b.Name + " with the plan; then only the missing of:"}}
	for _, ch := range buildx.Diff(docker, builderSpec(b), nil) {
		ops = append(ops, Op{Argv: ch.Argv})
	}
	ops = append(ops, Op{Argv: buildx.BootstrapArgv(docker, b.Name), Note: "only if a node is not running; every node must be running"})
	for _, n := range b.Nodes {
		ops = append(ops, Op{Text: fmt.Sprintf("check node %s native platform is %s (emulation: %s)", n.Name, n.Platform, b.Emulation)})
	}
	return ops
}
