package plan

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MaxInstances bounds the step instances of one plan: a matrix typo like a 10-axis cross
// product must be a load error, not a daemon holding millions of instances.
const MaxInstances = 10000

// MaxDependencies bounds the dependencies between instances of one plan (each instance of a
// step depends on every instance of each step it needs): a fan-in of two 5,000-value
// matrices would otherwise make 25 million edges and take gigabytes before the first step.
const MaxDependencies = 100000

// Expand turns a loaded plan into its graph of concrete instances: every matrix expanded
// (first axis slowest), every template rendered into exact argv elements, steps in file
// order within a topological sort, one provision instance per builder before its first use.
//
// Steps that use vars defined at run time (outputs:) are not expanded here: they are the
// graph's Pending steps, which Extend expands once the values exist.
func Expand(p *Plan) (*Graph, error) { return ExpandRun(p, nil) }

// ExpandRun is Expand for a run with parameters: params as ResolveParams returned them
// (nil: every default).
func ExpandRun(p *Plan, params map[string]string) (*Graph, error) {
	if params == nil {
		var err error
		if params, err = p.ResolveParams(nil); err != nil {
			return nil, err
		}
	}
	g, errs := expand(p, params, false)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return g, nil
}

// expand expands p with params (nil: the defaults). everyValue also checks the argv fields
// against every value of the values lists of the params they name (at load).
func expand(p *Plan, params map[string]string, everyValue bool) (*Graph, ErrorList) {
	if params == nil {
		params = p.defaultParams()
	}
	x := &expander{p: p, params: params, runtime: make(map[string]Var), byStep: make(map[string][]string),
		byID: make(map[string]*Instance), provisioned: make(map[string]string), everyValue: everyValue}
	x.g = &Graph{Plan: p, Params: params, x: x}
	order, err := topoOrder(p.Steps)
	if err != nil {
		return nil, ErrorList{err}
	}
	x.order = order
	planData := x.data(nil)
	x.planEnv = make(map[string]string, len(p.Env))
	for k, v := range p.Env {
		out, err := render(v, planData)
		if err != nil {
			x.errorf(p.Pos, "env %s: %v", k, err)
		}
		x.planEnv[k] = out
	}
	for _, s := range order {
		if s.deferred {
			x.pending = append(x.pending, s)
			continue
		}
		if !x.count(s) {
			return nil, x.errs
		}
		x.step(s)
	}
	return x.g, x.errs
}

// count adds the instances s will make to the total, false (with an error) past the bound.
func (x *expander) count(s *Step) bool {
	n := 1
	for _, ax := range s.Matrix {
		n *= max(len(x.axisValues(ax)), 1)
		if n > MaxInstances {
			break
		}
	}
	if s.BuildxCache != nil {
		n *= max(len(s.BuildxCache.Platforms), 1)
	}
	x.total += n
	if n > MaxInstances || x.total > MaxInstances {
		x.errorf(s.Pos, "step %s makes the plan expand to more than %d instances; reduce the matrix", s.ID, MaxInstances)
		return false
	}
	needed := 0
	for _, d := range s.Needs {
		needed += len(x.byStep[d])
	}
	x.edges += n * needed
	if x.edges > MaxDependencies {
		x.errorf(s.Pos, "step %s: its %d instances each need %d instances of %s, more than %d dependencies in the plan; reduce the matrices or need fewer steps",
			s.ID, n, needed, strings.Join(s.Needs, ", "), MaxDependencies)
		return false
	}
	return true
}

type expander struct {
	p           *Plan
	g           *Graph
	params      map[string]string
	runtime     map[string]Var    // vars steps defined at run time, so far
	source      *Source           // what the checkout step fetched, once it has (ExtendSource)
	dry         map[string]string // the values a dry run gave for the tree's (ExtendDry)
	order       []*Step
	pending     []*Step // deferred steps not expanded yet, in order
	total       int     // instances so far
	edges       int     // dependencies between instances so far
	planEnv     map[string]string
	byStep      map[string][]string // step id -> its instance ids
	byID        map[string]*Instance
	provisioned map[string]string // builder -> provision instance id
	errs        ErrorList
	everyValue  bool // checkArg tries every value of a param's values list (at load)
	// mask hides secret values in instance ids (Graph.Mask); nil shows them. raw maps each
	// instance id to the id it was formed as (they differ when mask changed it); formed
	// holds the ids raw maps to.
	mask   func(string) string
	raw    map[string]string
	formed map[string]bool
}

// data is the template data of the run, plus the matrix values c.
func (x *expander) data(c []KV) map[string]any {
	vars := varData(x.p.Vars)
	maps.Copy(vars, varData(x.runtime))
	params := make(map[string]any, len(x.params))
	for k, v := range x.params {
		params[k] = v
	}
	data := map[string]any{"vars": vars, "plan": x.p.Name, "instance": x.p.Instance, "params": params}
	if x.source != nil {
		data["source"] = map[string]any{"commit": x.source.Commit, "ref": x.source.Ref, "repo": x.source.Repo}
	}
	for _, kv := range c {
		data[kv.Key] = kv.Value
	}
	return data
}

// axisValues is an axis's values: written in the plan, or a list var's (run-time ones too).
func (x *expander) axisValues(ax Axis) []string {
	if ax.ref != "" {
		if v, ok := x.runtime[ax.ref]; ok {
			return v.List
		}
	}
	return ax.Values
}

func (x *expander) errorf(p Pos, format string, args ...any) {
	x.errs = append(x.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// topoOrder sorts steps so every step comes after what it needs, keeping file order where
// the needs allow it.
func topoOrder(steps []*Step) ([]*Step, *Error) {
	// Kahn's algorithm with the ready steps in a heap by file position: among the steps
	// whose needs are done, the first in the file goes next, in O((steps+needs) log steps)
	// so a plan at the size cap still validates in well under a second.
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		index[s.ID] = i
	}
	waiting := make([]int, len(steps))      // needs of step i not yet done
	dependents := make([][]int, len(steps)) // steps that need step i
	for i, s := range steps {
		seen := make(map[string]bool, len(s.Needs))
		for _, n := range s.Needs {
			if seen[n] {
				continue
			}
			seen[n] = true
			waiting[i]++
			if j, ok := index[n]; ok {
				dependents[j] = append(dependents[j], i)
			}
		}
	}
	ready := &intHeap{}
	for i := range steps {
		if waiting[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]*Step, 0, len(steps))
	done := make([]bool, len(steps))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		done[i] = true
		order = append(order, steps[i])
		for _, d := range dependents[i] {
			if waiting[d]--; waiting[d] == 0 {
				heap.Push(ready, d)
			}
		}
	}
	for i, s := range steps {
		if !done[i] {
			return nil, &Error{Pos: s.Pos, Msg: fmt.Sprintf("step %s: needs form a cycle or name unknown steps", s.ID)}
		}
	}
	return order, nil
}

// intHeap is a min-heap of step positions for topoOrder.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// combos returns the matrix bindings of s, first axis slowest; one empty binding without
// a matrix.
func combos(axes []Axis) [][]KV {
	out := [][]KV{nil}
	for _, ax := range axes {
		next := make([][]KV, 0, len(out)*len(ax.Values))
		for _, c := range out {
			for _, v := range ax.Values {
				next = append(next, append(slices.Clone(c), KV{Key: ax.Name, Value: v}))
			}
		}
		out = next
	}
	return out
}

func (x *expander) step(s *Step) {
	builder := s.Builder
	if s.BuildxCache != nil {
		builder = s.BuildxCache.Builder
	}
	provision := ""
	if builder != "" {
		provision = x.provision(builder)
	}
	var needs []string
	for _, n := range s.Needs {
		needs = append(needs, x.byStep[n]...)
	}
	if provision != "" {
		needs = append(needs, provision)
	}
	axes := make([]Axis, len(s.Matrix))
	for i, ax := range s.Matrix {
		axes[i] = ax
		axes[i].Values = x.axisValues(ax)
	}
	for _, c := range combos(axes) {
		data := x.data(c)
		id := s.ID
		if len(c) > 0 {
			parts := make([]string, len(c))
			for i, kv := range c {
				parts[i] = kv.Key + "=" + kv.Value
			}
			id += "[" + strings.Join(parts, ",") + "]"
		}
		base := &Instance{
			ID: id, Step: s, Values: c, Needs: slices.Clone(needs), ConcurrencyKey: s.ID,
			Builder: builder, Timeout: s.Timeout, Retry: s.Retry, Workdir: s.Workdir,
			Env: x.env(s, data), Data: data,
		}
		if base.Workdir == "" {
			base.Workdir = x.p.Workdir
		}
		for i, e := range s.Expect {
			base.Expects = append(base.Expects, Expectation{Pos: e.Pos, Why: e.Why,
				That:   x.render(s, fmt.Sprintf("expect.%d.that", i), e.That, data),
				Equals: x.render(s, fmt.Sprintf("expect.%d.equals", i), e.Equals, data)})
		}
		switch {
		case s.Run != nil:
			argv := make([]string, len(s.Run))
			for i, a := range s.Run {
				argv[i] = x.render(s, fmt.Sprintf("run.%d", i), a, data)
			}
			act := &RunAction{Argv: argv}
			if s.Report != nil {
				act.JUnit = x.render(s, "report.junit", s.Report.JUnit, data)
				x.check(s, "report.junit", checkRelPath("report junit", act.JUnit))
				if act.JUnit == "" {
					x.check(s, "report.junit", "report junit renders to an empty path")
				}
			}
			base.Action = act
			x.add(base)
		case s.BuildxCache != nil:
			x.buildxCache(s, base, data)
		case s.PublishConstraints != nil:
			pc := *s.PublishConstraints
			pc.Repo = x.render(s, "publish_constraints.repo", pc.Repo, data)
			pc.Branch = x.render(s, "publish_constraints.branch", pc.Branch, data)
			pc.Files = x.render(s, "publish_constraints.files", pc.Files, data)
			pc.Dir = x.render(s, "publish_constraints.dir", pc.Dir, data)
			x.checkArg(s, argPublishRepo, s.PublishConstraints.Repo, pc.Repo, data)
			x.checkArg(s, argBranch, s.PublishConstraints.Branch, pc.Branch, data)
			x.check(s, "publish_constraints.files", checkRelPath("files", pc.Files))
			x.check(s, "publish_constraints.dir", checkRelPath("dir", pc.Dir))
			base.Action = &PublishAction{PublishConstraints: pc}
			x.add(base)
		case s.Checkout != nil:
			co := *s.Checkout
			co.Repo = x.render(s, "checkout.repo", co.Repo, data)
			co.Ref = x.render(s, "checkout.ref", co.Ref, data)
			x.checkArg(s, argCheckoutRepo, s.Checkout.Repo, co.Repo, data)
			x.checkArg(s, argCheckoutRef, s.Checkout.Ref, co.Ref, data)
			if co.Path == "" {
				co.Path = base.Workdir
			}
			base.Action = &CheckoutAction{Checkout: co}
			x.add(base)
		case s.VerifyCache != nil:
			ref := x.render(s, "verify_cache.ref", s.VerifyCache.Ref, data)
			if !hasTag(ref) {
				x.errorf(s.at["verify_cache.ref"], "verify_cache ref renders to %q, which has no :TAG or @DIGEST", ref)
			} else {
				x.check(s, "verify_cache.ref", checkImageRef("verify_cache ref", ref))
			}
			base.Action = &VerifyAction{Refs: []string{ref}}
			x.add(base)
		}
	}
}

func (x *expander) buildxCache(s *Step, base *Instance, data map[string]any) {
	bc := s.BuildxCache
	b := x.p.Builders[bc.Builder]
	repo := x.render(s, "buildx_cache.ref", bc.Ref, data)
	if hasTag(repo) {
		x.errorf(s.at["buildx_cache.ref"], "buildx_cache ref %q must be a repository without a tag; refreshd adds cache-<os>-<arch> per platform", repo)
	} else {
		x.check(s, "buildx_cache.ref", checkImageRef("buildx_cache ref", repo))
	}
	var args []KV
	for _, k := range slices.Sorted(maps.Keys(bc.BuildArgs)) {
		v := x.render(s, "buildx_cache.build_args."+k, bc.BuildArgs[k], data)
		x.checkArg(s, argBuildArg(k), bc.BuildArgs[k], v, data)
		args = append(args, KV{Key: k, Value: v})
	}
	context := x.render(s, "buildx_cache.context", bc.Context, data)
	file := x.render(s, "buildx_cache.file", bc.File, data)
	target := x.render(s, "buildx_cache.target", bc.Target, data)
	x.checkArg(s, argContext, bc.Context, context, data)
	x.checkArg(s, argFile, bc.File, file, data)
	x.checkArg(s, argTarget, bc.Target, target, data)
	for i, pt := range bc.Platforms {
		key := fmt.Sprintf("buildx_cache.platforms.%d", i)
		platform := x.render(s, key, pt, data)
		if msg := checkPlatform(platform); msg != "" {
			if platform != pt {
				msg += fmt.Sprintf(" (rendered from %s)", pt)
			}
			x.errorf(s.at[key], "%s", msg)
			continue
		}
		node := ""
		var nodes []string
		for _, n := range b.Nodes {
			nodes = append(nodes, n.Name+" ("+n.Platform+")")
			if n.Platform == platform {
				node = n.Name
			}
		}
		if node == "" {
			x.errorf(s.at[key], "no node of builder %s is pinned to %s, so it would build in emulation or not at all; nodes: %s", b.Name, platform, strings.Join(nodes, ", "))
			continue
		}
		inst := *base
		inst.ID = base.ID + "[" + platform + "]"
		inst.ConcurrencyKey = s.ID + "[" + platform + "]"
		inst.Needs = slices.Clone(base.Needs)
		inst.Action = &BuildxCacheAction{
			Builder: bc.Builder, Node: node, Platform: platform,
			Context: context, File: file, Target: target,
			BuildArgs: args, CacheRef: repo + ":cache-" + PlatformTag(platform),
		}
		x.add(&inst)
	}
}

// provision returns the provision instance of a builder, adding it on first use.
func (x *expander) provision(name string) string {
	if id, ok := x.provisioned[name]; ok {
		return id
	}
	id := "provision[" + name + "]"
	x.provisioned[name] = id
	x.add(&Instance{
		ID: id, ConcurrencyKey: id, Builder: name, Retry: defaultRetry(), Workdir: x.p.Workdir,
		Env: maps.Clone(x.planEnv), Action: &ProvisionAction{Builder: x.p.Builders[name]},
	})
	return id
}

func (x *expander) add(inst *Instance) {
	if x.taken(inst.ID) {
		pos := x.p.Pos
		if inst.Step != nil {
			pos = inst.Step.Pos
		}
		x.errorf(pos, "two instances are both named %s; matrix values must differ", inst.ID)
		return
	}
	for _, n := range inst.Needs {
		inst.Level = max(inst.Level, x.byID[n].Level+1)
	}
	inst.ID = x.label(inst.ID)
	x.byID[inst.ID] = inst
	if inst.Step != nil {
		x.byStep[inst.Step.ID] = append(x.byStep[inst.Step.ID], inst.ID)
	}
	x.g.Instances = append(x.g.Instances, inst)
}

func (x *expander) env(s *Step, data map[string]any) map[string]string {
	env := maps.Clone(x.planEnv)
	if env == nil {
		env = make(map[string]string, len(s.Env))
	}
	for k, v := range s.Env {
		env[k] = x.render(s, "env."+k, v, data)
	}
	return env
}

// check records msg, when there is one, at the step's key.
func (x *expander) check(s *Step, key, msg string) {
	if msg == "" {
		return
	}
	pos, ok := s.at[key]
	if !ok {
		pos = s.Pos
	}
	x.errorf(pos, "%s", msg)
}

func (x *expander) render(s *Step, key, text string, data map[string]any) string {
	out, err := render(text, data)
	if err == nil && strings.IndexByte(out, 0) >= 0 {
		// No argument, environment value, path or reference can hold one: exec would
		// refuse it with "invalid argument" only when the run gets there.
		err = fmt.Errorf("%s holds a NUL byte (\\0), which no program argument, environment value or path can carry", key)
	}
	if err != nil {
		pos, ok := s.at[key]
		if !ok {
			pos = s.Pos
		}
		x.errorf(pos, "%v", err)
	}
	return out
}

// hasTag reports whether an image reference names a tag or a digest.
func hasTag(ref string) bool {
	if strings.Contains(ref, "@") {
		return true
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.Contains(last, ":")
}

// Kind names of the actions, as shown by the dry run and stored in history.
func (*RunAction) Kind() string         { return "run" }
func (*ProvisionAction) Kind() string   { return "provision" }
func (*BuildxCacheAction) Kind() string { return "buildx_cache" }
func (*PublishAction) Kind() string     { return "publish_constraints" }
func (*VerifyAction) Kind() string      { return "verify_cache" }
func (*CheckoutAction) Kind() string    { return "checkout" }
