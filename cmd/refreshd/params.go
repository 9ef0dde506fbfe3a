package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/plan"
)

// paramFlag collects repeatable --param NAME=VALUE flags. The plan checks names and values
// (plan.ResolveParams); here only the shape and repeats are refused.
type paramFlag map[string]string

func (p paramFlag) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		parts = append(parts, k+"="+p[k])
	}
	return strings.Join(parts, " ")
}

func (p paramFlag) Set(s string) error {
	k, v, err := plan.ParseParamArg(s)
	if err != nil {
		return err
	}
	if _, dup := p[k]; dup {
		return fmt.Errorf("--param %s given twice", k)
	}
	p[k] = v
	return nil
}

// pickInstance returns the plan of a file to run: its only plan, or the instance named
// (as NAME or PLAN/NAME). A file of instances needs one named; a wrong name lists them.
func pickInstance(plans []*plan.Plan, instance string) (*plan.Plan, error) {
	if instance == "" {
		if len(plans) == 1 && plans[0].Instance == "" {
			return plans[0], nil
		}
		return nil, fmt.Errorf("plan %s has instances; choose one with --instance (%s)", plans[0].Base, instanceNames(plans))
	}
	for _, p := range plans {
		if p.Instance != "" && (p.Instance == instance || p.Name == instance) {
			return p, nil
		}
	}
	if plans[0].Instance == "" {
		return nil, fmt.Errorf("--instance %s: plan %s has no instances", instance, plans[0].Name)
	}
	return nil, fmt.Errorf("--instance %s: plan %s has no such instance; instances: %s", instance, plans[0].Base, instanceNames(plans))
}

func instanceNames(plans []*plan.Plan) string {
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = p.Instance
	}
	return strings.Join(names, ", ")
}

// stagingFlags are the overlays and var overrides a staging run lays over its plan
// (plan.LoadOptions): --overlay FILE and --var NAME=VALUE, both repeatable.
type stagingFlags struct {
	opts    plan.LoadOptions
	offline bool
}

// lister sets the lister of instances_from: the remote's branches, unless --offline.
func (s *stagingFlags) lister(ctx context.Context) {
	if !s.offline {
		s.opts.Branches = newRemoteBranches(ctx, nil).List
	}
}

func addStagingFlags(fs *flagSet) *stagingFlags {
	s := &stagingFlags{}
	fs.BoolVar(&s.offline, "offline", false, "list no remote's branches: a plan's instances_from derives no instance (a warning says so)")
	fs.Func("overlay", "`FILE`: an overlay (overlay: PLAN) laid over the plan after its directory's own (repeatable)", func(v string) error {
		s.opts.Overlays = append(s.opts.Overlays, v)
		return nil
	})
	fs.Func("var", "`NAME=VALUE`: the value of a plan var in every instance, over the plan's and any overlay's; a list var takes V1,V2 (repeatable)", func(v string) error {
		o, err := plan.ParseVarArg(v)
		if err != nil {
			return err
		}
		for _, x := range s.opts.Vars {
			if x.Name == o.Name {
				return fmt.Errorf("--var %s given twice", o.Name)
			}
		}
		s.opts.Vars = append(s.opts.Vars, o)
		return nil
	})
	return s
}

// valueFlag collects --value NAME=V1,V2 for the complete dry run (plan.Graph.ExtendDry
// checks names and values).
type valueFlag struct{ m paramFlag }

func (v valueFlag) String() string { return v.m.String() }

func (v valueFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("--value %q: want NAME=VALUE (a list: NAME=V1,V2)", s)
	}
	if _, dup := v.m[k]; dup {
		return fmt.Errorf("--value %s given twice", k)
	}
	v.m[k] = val
	return nil
}
