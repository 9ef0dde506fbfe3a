package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The graph is expanded in stages. Expand makes the first: every step that uses no value
// defined at run time. The rest are Pending until the steps defining their values
// succeeded; the executor hands each producer's values to Extend, which expands every
// pending step that can now be and returns the new instances for the run to schedule.

// PendingStep is a step that expands at run time.
type PendingStep struct {
	Step *Step
	// Waits are the steps whose values it uses (directly; a step it needs may wait too).
	Waits []string
	// Vars are the run-time vars of the steps it waits for, by name.
	Vars []string
}

// Pending lists the steps not expanded yet, in graph order.
func (g *Graph) Pending() []PendingStep {
	if g.x == nil {
		return nil
	}
	out := make([]PendingStep, 0, len(g.x.pending))
	for _, s := range g.x.pending {
		out = append(out, PendingStep{Step: s, Waits: slices.Clone(s.waits), Vars: g.x.p.usedRuntime(s)})
	}
	return out
}

// usedRuntime lists the run-time vars a step uses, sorted, and "source" when it names
// what the checkout fetched.
func (p *Plan) usedRuntime(s *Step) []string {
	var out []string
	for _, w := range p.Steps {
		if !slices.Contains(s.waits, w.ID) {
			continue
		}
		if w.Checkout != nil {
			out = append(out, "source")
		}
		if w.Outputs == nil {
			continue
		}
		for _, ov := range w.Outputs.Vars {
			out = append(out, ov.Name)
		}
	}
	slices.Sort(out)
	return out
}

// RuntimeVars are the values steps defined so far in this run, by name.
func (g *Graph) RuntimeVars() map[string]Var {
	if g.x == nil {
		return nil
	}
	return maps.Clone(g.x.runtime)
}

// Extend records the values step defined (as ParseOutputs returned them) and expands every
// pending step whose producers have all delivered and whose needs are all expanded. It
// returns the instances added, in graph order, already appended to g.Instances. An error
// (a matrix too large, a platform no node is pinned to) leaves g as it was.
func (g *Graph) Extend(step string, values map[string]Var) ([]*Instance, error) {
	x := g.x
	if x == nil {
		return nil, fmt.Errorf("extend graph of %s: not made by Expand", g.Plan.Name)
	}
	for name, v := range values {
		x.runtime[name] = v
	}
	before := len(g.Instances)
	saved := struct {
		total   int
		pending []*Step
	}{x.total, slices.Clone(x.pending)}
	var rest []*Step
	for _, s := range x.pending {
		ready := !slices.ContainsFunc(s.waits, func(id string) bool { return !x.delivered(id) })
		for _, n := range s.Needs {
			if slices.ContainsFunc(rest, func(r *Step) bool { return r.ID == n }) {
				ready = false
			}
		}
		if !ready {
			rest = append(rest, s)
			continue
		}
		if !x.count(s) {
			break
		}
		x.step(s)
	}
	if len(x.errs) > 0 {
		err := x.errs.err()
		x.errs = nil
		// Undo: the run fails with this error, and the graph stays what it was.
		for _, in := range g.Instances[before:] {
			delete(x.byID, in.ID)
			x.forget(in.ID)
			if in.Step != nil {
				x.byStep[in.Step.ID] = slices.DeleteFunc(x.byStep[in.Step.ID], func(id string) bool { return id == in.ID })
			} else {
				for b, id := range x.provisioned {
					if id == in.ID {
						delete(x.provisioned, b)
					}
				}
			}
		}
		g.Instances = g.Instances[:before]
		x.total, x.pending = saved.total, saved.pending
		return nil, fmt.Errorf("expand the steps that use the values of %s: %w", step, err)
	}
	x.pending = rest
	return g.Instances[before:], nil
}

// delivered reports whether step id has given the run what later steps wait for: every var
// of its outputs:, and for a checkout step, the source it fetched.
func (x *expander) delivered(id string) bool {
	for _, s := range x.p.Steps {
		if s.ID != id {
			continue
		}
		if s.Checkout != nil && x.source == nil {
			return false
		}
		if s.Outputs != nil {
			for _, ov := range s.Outputs.Vars {
				if _, ok := x.runtime[ov.Name]; !ok {
					return false
				}
			}
		}
	}
	return true
}

// Source is what the run's checkout step fetched, as templates see it (.source.commit,
// .source.ref, .source.repo).
type Source struct {
	Repo, Ref, Commit string
}

// ExtendSource records what checkout step fetched and expands the steps whose templates
// name .source (Extend).
func (g *Graph) ExtendSource(step string, src Source) ([]*Instance, error) {
	if g.x == nil {
		return nil, fmt.Errorf("extend graph of %s: not made by Expand", g.Plan.Name)
	}
	g.x.source = &src
	return g.Extend(step, nil)
}

// PendingReason says why a pending step never expanded, for the run's record.
func (g *Graph) PendingReason(ps PendingStep) string {
	var missing []string
	for _, w := range ps.Waits {
		if !g.x.delivered(w) {
			missing = append(missing, w)
		}
	}
	if len(missing) == 0 {
		return "expands at run time after " + strings.Join(ps.Step.Needs, ", ") + ", which did not expand"
	}
	return "expands at run time from the values of " + strings.Join(slices.Compact(missing), ", ") + ", which never defined them"
}
