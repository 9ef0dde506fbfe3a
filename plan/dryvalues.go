package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The complete dry run: refreshd plan --value NAME=V1,V2 expands the steps that wait for
// values read from the tree, with values the operator gives instead, so that every step
// instance's exact command can be reviewed before a first night.

// SourceCommitValue is the --value name of the commit a checkout step would fetch
// (.source.commit); without it the dry run shows DryRunCommit.
const SourceCommitValue = "source.commit"

// DryRunCommit stands for the commit a checkout would fetch in a dry run given no
// source.commit value.
const DryRunCommit = "COMMIT"

// ExtendDry expands g with the given values in place of what its steps would read at run
// time: each value checked as the producing step's outputs are (type, pattern, bounds), a
// list var given as V1,V2. A checkout step is taken to fetch its rendered ref at
// given[source.commit] (DryRunCommit when absent). A name that is no run-time var, or a
// step given only some of its vars, is an error naming what is valid; a step whose values
// are not all given stays pending, as do the steps waiting for it.
func (g *Graph) ExtendDry(given map[string]string) error {
	if g.x == nil {
		return fmt.Errorf("extend graph of %s: not made by Expand", g.Plan.Name)
	}
	g.x.dry = maps.Clone(given)
	producers := map[string]*Step{} // var -> step
	for _, s := range g.Plan.Steps {
		if s.Outputs != nil {
			for _, ov := range s.Outputs.Vars {
				producers[ov.Name] = s
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(given)) {
		if _, ok := producers[name]; !ok && name != SourceCommitValue {
			valid := append(slices.Sorted(maps.Keys(producers)), SourceCommitValue)
			return fmt.Errorf("--value %s: no step of plan %s defines %s at run time; values: %s", name, g.Plan.Name, name, strings.Join(valid, ", "))
		}
	}
	vals := map[*Step]map[string]Var{}
	for _, s := range g.Plan.Steps {
		out, err := dryOutputs(s, given)
		if err != nil {
			return err
		}
		if out != nil {
			vals[s] = out
		}
	}
	commit, ok := given[SourceCommitValue]
	if !ok {
		commit = DryRunCommit
	}
	return g.deliverDry(vals, commit)
}

// dryOutputs is what step s would define at run time, from the given values and checked
// as its outputs are; nil when s defines nothing or none of its vars is given (it stays
// pending), an error when only some are.
func dryOutputs(s *Step, given map[string]string) (map[string]Var, error) {
	if s.Outputs == nil {
		return nil, nil
	}
	obj := map[string]any{}
	var missing []string
	for _, ov := range s.Outputs.Vars {
		v, ok := given[ov.Name]
		switch {
		case !ok:
			missing = append(missing, ov.Name)
		case ov.List:
			obj[ov.Name] = strings.Split(v, ",")
		default:
			obj[ov.Name] = v
		}
	}
	if len(obj) == 0 {
		return nil, nil
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("--value: step %s defines %s; give %s too", s.ID, strings.Join(outputNames(s.Outputs), ", "), strings.Join(missing, ", "))
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return ParseOutputs(&Outputs{From: "--value", Vars: s.Outputs.Vars}, data)
}

// deliverDry extends g with each producer's values (vals) and each checkout's fetch of
// commit, in rounds: a producer expands only once what it waits for has delivered.
func (g *Graph) deliverDry(vals map[*Step]map[string]Var, commit string) error {
	for delivered := map[string]bool{}; ; {
		progress := false
		for _, s := range g.Plan.Steps {
			if delivered[s.ID] || !g.expanded(s.ID) {
				continue
			}
			var err error
			switch {
			case s.Checkout != nil:
				_, err = g.ExtendSource(s.ID, g.drySource(s.ID, commit))
			case vals[s] != nil:
				_, err = g.Extend(s.ID, vals[s])
			default:
				continue
			}
			if err != nil {
				return fmt.Errorf("expand with the values of step %s: %w", s.ID, err)
			}
			delivered[s.ID], progress = true, true
		}
		if !progress {
			return nil
		}
	}
}

// expanded reports whether step id has instances in the graph.
func (g *Graph) expanded(id string) bool {
	return slices.ContainsFunc(g.Instances, func(in *Instance) bool { return in.Step != nil && in.Step.ID == id })
}

// DryValues lists the values ExtendDry was given, NAME=VALUE sorted; nil for a real run.
func (g *Graph) DryValues() []string {
	if g.x == nil {
		return nil
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(g.x.dry)) {
		out = append(out, k+"="+g.x.dry[k])
	}
	return out
}
