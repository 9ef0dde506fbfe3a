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
	if f, ok := s.action().spec.(fanOutSpec); ok {
		n *= f.instances()
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

// step adds the instances of step s: one per matrix combination (per platform for a
// buildx build), after the provision instance of the builder it uses.
func (x *expander) step(s *Step) {
	builder := s.Builder
	if b, ok := s.action().spec.(builderSpec); ok {
		builder = b.builder()
	}
	var needs []string
	for _, n := range s.Needs {
		needs = append(needs, x.byStep[n]...)
	}
	if builder != "" {
		needs = append(needs, x.provision(builder))
	}
	axes := make([]Axis, len(s.Matrix))
	for i, ax := range s.Matrix {
		axes[i] = ax
		axes[i].Values = x.axisValues(ax)
	}
	for _, c := range combos(axes) {
		data := x.data(c)
		base := &Instance{
			ID: instanceID(s.ID, c), Step: s, Values: c, Needs: slices.Clone(needs), ConcurrencyKey: s.ID,
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
		s.action().spec.expand(x, s, base, data)
	}
}

// instanceID is the id of step id's instance for matrix values c: "id[k=v,...]".
func instanceID(id string, c []KV) string {
	if len(c) == 0 {
		return id
	}
	parts := make([]string, len(c))
	for i, kv := range c {
		parts[i] = kv.Key + "=" + kv.Value
	}
	return id + "[" + strings.Join(parts, ",") + "]"
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
