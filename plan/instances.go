package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Instances: one plan file, several branches. A plan may declare
//
//	instances:
//	  main:      { vars: { branch: main, constraints_branch: constraints-main } }
//	  v3-1-test: { vars: { branch: v3-1-test, constraints_branch: constraints-3-1 }, schedule: "0 4 * * *" }
//
// Each instance is a plan of its own, named PLAN/INSTANCE ("airflow/main"): the file decoded
// once per instance with the instance's vars laid over the plan's vars (and its schedule and
// workdir, when it sets them). So every instance is scheduled, triggered, locked, recorded,
// metered and shown apart, and is checked as completely as a plan without instances. A plan
// with instances has no run of its own under its bare name.

// instanceSpec is one entry of instances:, decoded before the plan itself.
type instanceSpec struct {
	pos      Pos
	name     string
	vars     map[string]Var
	varKey   map[string]Pos // place of each var name, for type clashes
	schedule *yaml.Node
	timezone *yaml.Node
	workdir  *yaml.Node
	// params are this instance's defaults of the plan's params (a release branch's ref).
	params    map[string]string
	paramsPos map[string]Pos
}

// instanceSep joins a plan's name and an instance's: "airflow/main". Plan and instance
// names never hold it, so the full name is unambiguous.
const instanceSep = "/"

// InstanceName is the name runs, history and the CLI know an instance by.
func InstanceName(plan, instance string) string {
	if instance == "" {
		return plan
	}
	return plan + instanceSep + instance
}

// findKey returns the value node of key in mapping n, or nil.
func findKey(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// instanceSpecs decodes the instances: mapping of a plan document (nil when it has none).
func (d *decoder) instanceSpecs(doc *yaml.Node) []*instanceSpec {
	n := findKey(doc, "instances")
	if n == nil {
		return nil
	}
	pd := &planDecoder{decoder: d}
	pairs := d.pairs(n, "instances")
	if pairs == nil && resolve(n).Kind == yaml.MappingNode {
		d.errorf(n, "instances is empty; declare at least one, like instances: {main: {vars: {branch: main}}}, or leave instances out")
	}
	var out []*instanceSpec
	for _, kv := range pairs {
		k, v := kv[0], kv[1]
		if !namePattern.MatchString(k.Value) {
			d.errorf(k, "instance name %q: use %s (runs are named PLAN/INSTANCE)", k.Value, nameRule)
			continue
		}
		out = append(out, d.instanceSpec(pd, d.pos(k), k.Value, v))
	}
	return out
}

// instanceSpec decodes one instance entry (of instances:, or made by instances_from).
func (d *decoder) instanceSpec(pd *planDecoder, pos Pos, name string, v *yaml.Node) *instanceSpec {
	{
		spec := &instanceSpec{pos: pos, name: name}
		d.fields(v, "instance", []field{
			{"vars", func(v *yaml.Node) {
				spec.vars = pd.vars(v)
				spec.varKey = make(map[string]Pos)
				for _, kv := range d.pairs(v, "vars") {
					spec.varKey[kv[0].Value] = d.pos(kv[0])
				}
			}},
			{"schedule", func(v *yaml.Node) { spec.schedule = v }},
			{"timezone", func(v *yaml.Node) { spec.timezone = v }},
			{"workdir", func(v *yaml.Node) { spec.workdir = v }},
			{"params", func(v *yaml.Node) { spec.params, spec.paramsPos = d.strMap(v, "instance params") }},
		})
		return spec
	}
}

// overlayVars lays the instance's vars over the plan's. A var the plan declares keeps its
// kind: an instance cannot turn a list into a string.
func (pd *planDecoder) overlayVars() {
	spec := pd.inst
	if spec == nil {
		return
	}
	if pd.p.Vars == nil {
		pd.p.Vars = make(map[string]Var)
	}
	for name, v := range spec.vars {
		if base, ok := pd.p.Vars[name]; ok && base.IsList != v.IsList {
			pd.errorAt(spec.varKey[name], "instance %s sets var %s to %s, but vars: declares it as %s (%s)", spec.name, name, varKind(v), varKind(base), base.Pos)
			continue
		}
		pd.p.Vars[name] = v
	}
}

func varKind(v Var) string {
	if v.IsList {
		return "a list"
	}
	return "a string"
}

// plans decodes f: one plan, or one per instance. An error found in only some instances
// names the instance; one found in all of them is reported once, as for a plain plan.
func (l *loader) plans(f *parsedFile) []*Plan {
	overlays := l.overlays[planName(f.doc)]
	if len(overlays) == 0 {
		return l.decodePlans(f)
	}
	errs := len(l.errs)
	f = l.applyOverlays(f, overlays)
	if len(l.errs) > errs {
		l.overlayFailed(f, overlays)
		return nil
	}
	plans := l.decodePlans(f)
	if len(l.errs) > errs {
		l.overlayFailed(f, overlays)
		return nil
	}
	for _, p := range plans {
		var own []Override
		for _, o := range f.overrides {
			// An instance lists what was set for it, not for its siblings.
			if rest, ok := strings.CutPrefix(o.Path, "instances."); ok && p.Instance != "" && !strings.HasPrefix(rest, p.Instance+".") && rest != p.Instance {
				continue
			}
			own = append(own, o)
		}
		p.Overrides = append(own, p.Overrides...)
	}
	return plans
}

// overlayFailed charges a plan that does not load with its overlays to the plan's file
// too: a daemon keeps the last good version of a plan whose file did not load.
func (l *loader) overlayFailed(f *parsedFile, overlays []*parsedFile) {
	var names []string
	for _, o := range overlays {
		names = append(names, o.path)
	}
	l.errs = append(l.errs, &Error{Pos: Pos{File: f.path, Line: 1, Col: 1},
		Msg: "the plan does not load with its overlay " + strings.Join(names, ", ") + " (see the errors there)"})
}

// decodePlans decodes f: one plan, or one per instance.
func (l *loader) decodePlans(f *parsedFile) []*Plan {
	d := &decoder{file: f.path, known: l.known, origin: f.origin}
	specs := d.instanceSpecs(f.doc)
	derived, dspecs := d.derivedInstances(f.doc, l.branches, specs)
	specs = append(specs, dspecs...)
	l.errs = append(l.errs, d.errs...)
	if len(d.errs) > 0 {
		return nil
	}
	if specs == nil && derived != nil {
		l.errs = append(l.errs, &Error{Pos: derived.Pos, Msg: "instances_from made no instance and the plan declares none: " + derived.Warning})
		return nil
	}
	if specs == nil {
		if p := l.plan(f, nil); p != nil {
			return []*Plan{p}
		}
		return nil
	}
	var out []*Plan
	count := make(map[Error]int)
	perInstance := make([]ErrorList, len(specs))
	for i, spec := range specs {
		d := &decoder{file: f.path, known: l.known, origin: f.origin}
		p := d.plan(f.doc, l, spec)
		perInstance[i] = d.errs
		for _, e := range slices.CompactFunc(slices.Clone(d.errs), func(a, b *Error) bool { return *a == *b }) {
			count[*e]++
		}
		if p != nil {
			out = append(out, p)
		}
	}
	seen := make(map[Error]bool)
	for i, errs := range perInstance {
		for _, e := range errs {
			if count[*e] == len(specs) {
				if !seen[*e] {
					seen[*e] = true
					l.errs = append(l.errs, e)
				}
				continue
			}
			if strings.Contains(e.Msg, "instance "+specs[i].name+" ") {
				l.errs = append(l.errs, e) // it names the instance already
				continue
			}
			l.errs = append(l.errs, &Error{Pos: e.Pos, Msg: e.Msg + " (in instance " + specs[i].name + ")"})
		}
	}
	if len(l.errs) > 0 && len(out) != len(specs) {
		return nil // an instance that does not load makes the file invalid, like any error
	}
	l.checkInstanceWorkdirs(out, specs)
	for _, p := range out {
		p.Derived = derived
		if derived != nil && derived.Warning != "" {
			p.Warnings = append(p.Warnings, &Error{Pos: derived.Pos, Msg: derived.Warning})
		}
	}
	return out
}

// checkInstanceWorkdirs refuses two instances of one plan that share a workdir: their runs
// may overlap, and two checkouts or builds in one directory would corrupt each other.
func (l *loader) checkInstanceWorkdirs(plans []*Plan, specs []*instanceSpec) {
	byDir := make(map[string]*Plan)
	for i, p := range plans {
		if p.Workdir == "" {
			continue // STATE/work/PLAN/INSTANCE: one each
		}
		if other, dup := byDir[p.Workdir]; dup {
			pos := specs[i].pos
			l.errs = append(l.errs, &Error{Pos: pos, Msg: fmt.Sprintf(
				"instances %s and %s share workdir %s; runs of two instances may overlap, so give each its own (workdir: under the instance, or a template like /srv/project/{{ .instance }})",
				other.Instance, p.Instance, p.Workdir)})
			continue
		}
		byDir[p.Workdir] = p
	}
}

// overlayParams sets the instance's defaults of the plan's params, each checked like the
// plan's own default.
func (pd *planDecoder) overlayParams() {
	spec := pd.inst
	if spec == nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(spec.params)) {
		i := slices.IndexFunc(pd.p.Params, func(x Param) bool { return x.Name == name })
		if i < 0 {
			valid := "the plan declares none"
			if len(pd.p.Params) > 0 {
				valid = "params: " + strings.Join(pd.p.ParamNames(), ", ")
			}
			pd.errorAt(spec.paramsPos[name], "instance %s sets param %s, which the plan does not declare; %s", spec.name, name, valid)
			continue
		}
		v := spec.params[name]
		if msg := pd.p.Params[i].check(v); msg != "" {
			pd.errorAt(spec.paramsPos[name], "instance %s param %s default %q: %s", spec.name, name, v, msg)
			continue
		}
		pd.p.Params[i].Default = v
	}
}

// applyInstance sets what the instance decides after the plan's own keys were read: its
// name, schedule, timezone and workdir.
func (pd *planDecoder) applyInstance(scheduleNode, tzNode **yaml.Node) {
	spec := pd.inst
	if spec == nil {
		return
	}
	p := pd.p
	p.Instance = spec.name
	if p.Base != "" {
		p.Name = InstanceName(p.Base, spec.name)
	}
	if spec.schedule != nil {
		*scheduleNode = spec.schedule
		p.Schedule = pd.str(spec.schedule, "instance schedule")
	}
	if spec.timezone != nil {
		*tzNode = spec.timezone
		p.Timezone = pd.nonEmpty(spec.timezone, "instance timezone")
	}
	if spec.workdir != nil {
		pd.workdirNode = spec.workdir
		p.Workdir = pd.absPath(spec.workdir, "instance workdir")
	}
}

// Instances lists, for error messages, the instance names of plans loaded from one file.
func instanceList(plans []*Plan) string {
	var names []string
	for _, p := range plans {
		names = append(names, p.Name)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(a, b) })
	return strings.Join(names, ", ")
}
