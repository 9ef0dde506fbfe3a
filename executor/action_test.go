package executor

import (
	"testing"

	"github.com/refreshd/refreshd/plan"
)

// TestBuiltinCoversPlan expands the plans that use every key of the plan format (a step of
// every built-in action, and a builder to provision) and checks the executor has an action
// for each instance's, which describes itself for the dry run.
func TestBuiltinCoversPlan(t *testing.T) {
	plans, err := plan.LoadDir("../plan/testdata/full")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range plans {
		g, err := plan.Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range g.Instances {
			act, err := builtin(in.Action, p)
			if err != nil {
				t.Errorf("%s: instance %s: %v", p.Name, in.ID, err)
				continue
			}
			if len(act.describe(&Tools{})) == 0 {
				t.Errorf("%s: instance %s (%s) describes no operation for the dry run", p.Name, in.ID, in.Action.Kind())
			}
			kinds[in.Action.Kind()] = true
		}
	}
	for _, k := range plan.ActionKinds() {
		if !kinds[k] {
			t.Errorf("no instance of %s in plan/testdata/full: add a step doing it", k)
		}
	}
}
