package plan

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/refreshd/refreshd/internal/safearg"
)

// Defaults applied when a plan leaves a setting out.
const (
	DefaultTimezone    = "UTC"
	DefaultKeepRuns    = 50
	DefaultAttempts    = 1
	DefaultBackoff     = 10 * time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultJitter      = 0.2
	DefaultIgnoreLines = "^#"
	DefaultPublishTry  = 5
	DefaultAuthorName  = "refreshd"
	DefaultAuthorEmail = "refreshd@localhost"
	// DefaultMessage is the commit message template of publish_constraints. Its names:
	// .plan (plan name), .run (run id), .summary (which files changed, e.g. "3 files: ..."),
	// .source (the run's checkout, when it has one).
	DefaultMessage = "Update constraints ({{ .summary }})\n\nrun {{ .run }} of plan {{ .plan }}{{ if .source }}\nsource: {{ .source.repo }} {{ .source.ref }} {{ .source.commit }}{{ end }}"
)

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	nameRule  = "letters, digits, '_', '.', '-', starting with a letter or digit"
	identRule = "letters, digits and '_', not starting with a digit"
)

// templateKind says which names a pending template may use.
type templateKind int

const (
	tmplPlan    templateKind = iota // .vars, .plan
	tmplStep                        // .vars, .plan, the step's matrix axes
	tmplMessage                     // .plan, .run, .summary
	tmplNotify                      // .secrets
	tmplWorkdir                     // .vars, .plan, .instance: rendered when the plan loads
)

// pendingTemplate is checked once the whole file is decoded, since vars and matrix axes may
// be written after the templates that use them.
type pendingTemplate struct {
	pos  Pos
	text string
	kind templateKind
	step *Step
}

type planDecoder struct {
	*decoder
	l     *loader
	p     *Plan
	tmpls []pendingTemplate
	refs  map[string]Pos // builders referenced with {ref: NAME}
	// broken are builder names whose declaration or reference already has an error: steps
	// using them are not reported again.
	broken map[string]bool
	// inst is the instance being decoded (nil for a plan without instances).
	inst        *instanceSpec
	workdirNode *yaml.Node
	// runtime are the vars steps define at run time (outputs:), by name.
	runtime map[string]runtimeVar
	// badSecrets are secrets whose declaration has an error: not reported again as unused.
	badSecrets map[string]bool
}

// plan decodes one plan document; spec, when not nil, is the instance to decode it as.
func (d *decoder) plan(doc *yaml.Node, l *loader, spec *instanceSpec) *Plan {
	pd := &planDecoder{decoder: d, l: l, refs: make(map[string]Pos), broken: make(map[string]bool), inst: spec, badSecrets: make(map[string]bool)}
	p := &Plan{
		Pos: d.pos(doc), File: d.file, Timezone: DefaultTimezone, Overlap: OverlapSkip,
		KeepRuns: DefaultKeepRuns,
		Builders: make(map[string]*Builder),
	}
	pd.p = p
	var scheduleNode, tzNode, stepsNode *yaml.Node
	var hasName bool
	d.fields(doc, "plan", []field{
		{"plan", func(v *yaml.Node) {
			hasName = true
			p.Name = d.name(v, "plan")
			p.namePos = d.pos(v)
			if p.Name != "" && !namePattern.MatchString(p.Name) {
				d.errorf(v, "plan name %q: use %s", p.Name, nameRule)
			}
		}},
		{"schedule", func(v *yaml.Node) { scheduleNode = v; p.Schedule = d.str(v, "schedule") }},
		{"timezone", func(v *yaml.Node) { tzNode = v; p.Timezone = d.nonEmpty(v, "timezone") }},
		{"overlap", func(v *yaml.Node) {
			s := d.str(v, "overlap")
			switch Overlap(s) {
			case OverlapSkip, OverlapQueue:
				p.Overlap = Overlap(s)
			default:
				d.errorf(v, "overlap %q: want skip or queue", s)
			}
		}},
		{"catch_up", func(v *yaml.Node) { p.CatchUp = d.boolean(v, "catch_up") }},
		{"timeout", func(v *yaml.Node) { p.Timeout = d.duration(v, "timeout") }},
		{"concurrency", func(v *yaml.Node) { p.Concurrency = d.integer(v, "concurrency", 1, 1000) }},
		{"kill_grace", func(v *yaml.Node) { p.KillGrace = d.duration(v, "kill_grace") }},
		{"workdir", func(v *yaml.Node) { pd.workdirNode = v; p.Workdir = d.absPath(v, "workdir") }},
		{"env", func(v *yaml.Node) { p.Env = pd.env(v, nil) }},
		{"secrets", func(v *yaml.Node) { p.Secrets = pd.secrets(v) }},
		{"vars", func(v *yaml.Node) { p.Vars = pd.vars(v) }},
		{"builders", func(v *yaml.Node) { pd.builders(v) }},
		{"skip_if", func(v *yaml.Node) { p.SkipIf = pd.skipIf(v) }},
		{"notify", func(v *yaml.Node) { p.Notify = pd.notify(v) }},
		{"keep_runs", func(v *yaml.Node) { p.KeepRuns = d.integer(v, "keep_runs", 1, 100000) }},
		{"steps", func(v *yaml.Node) { stepsNode = v; p.Steps = pd.steps(v) }},
		{"params", func(v *yaml.Node) { p.Params = pd.params(v) }},
		{"instances", func(v *yaml.Node) {}},      // decoded first, by instanceSpecs
		{"instances_from", func(v *yaml.Node) {}}, // decoded first, by derivedInstances
	})
	p.Base = p.Name
	pd.overlayVars()
	pd.overlayParams()
	pd.applyInstance(&scheduleNode, &tzNode)
	if !hasName {
		d.errorf(doc, "missing plan: NAME (the plan's name, unique in its directory)")
	}
	if stepsNode == nil {
		d.errorf(doc, "missing steps: a plan needs at least one step")
	} else if len(p.Steps) == 0 && len(resolve(stepsNode).Content) == 0 {
		d.errorf(stepsNode, "steps is empty; a plan needs at least one step")
	}
	if tzNode != nil && p.Timezone != "" {
		loc, err := loadZone(p.Timezone)
		if err != nil {
			d.errorf(tzNode, "unknown timezone %q; want an IANA name like UTC, Europe/Berlin or America/New_York", p.Timezone)
		} else {
			p.Location = loc
		}
	} else if tzNode == nil {
		p.Location = time.UTC
	}
	if scheduleNode != nil && p.Schedule != "" {
		// p.Location is nil when the timezone is bad: the spec is still checked, in UTC.
		sched, err := ParseSchedule(p.Schedule, p.Location)
		if err != nil {
			d.errorf(scheduleNode, "%v", err)
		} else {
			p.sched = sched
		}
	}
	if p.Secrets == nil {
		p.Secrets = map[string]Secret{}
	}
	if p.Vars == nil {
		p.Vars = map[string]Var{}
	}
	pd.resolveRefs()
	pd.collectOutputs()
	pd.applyVars(pd.l.vars)
	pd.checkSteps()
	pd.checkGates()
	pd.resolveTags()
	pd.checkTemplates()
	pd.renderWorkdir()
	pd.checkRuntimeVars()
	if len(d.errs) == 0 {
		if _, errs := expand(p, nil, true); len(errs) > 0 {
			d.errs = append(d.errs, errs...)
		}
	}
	if len(d.errs) > 0 {
		return nil
	}
	return p
}

func (d *decoder) absPath(n *yaml.Node, what string) string {
	s := d.nonEmpty(n, what)
	if s != "" && !filepath.IsAbs(s) {
		example := "/var/lib/refreshd/work"
		if strings.Contains(what, "secret") {
			example = "/etc/refreshd/github-token"
		}
		d.errorf(n, "%s %q is relative; want an absolute path like %s", what, s, example)
	}
	return s
}

// env decodes an env mapping; values may be templates (over vars, and the step's axes).
func (pd *planDecoder) env(n *yaml.Node, step *Step) map[string]string {
	out := make(map[string]string)
	kind := tmplPlan
	if step != nil {
		kind = tmplStep
	}
	for _, kv := range pd.identPairs(n, "env", "env", "") {
		k, v := kv[0], kv[1]
		out[k.Value] = pd.str(v, "env "+k.Value)
		pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(v), text: out[k.Value], kind: kind, step: step})
		if step != nil {
			step.at["env."+k.Value] = pd.pos(v)
		}
	}
	return out
}

// identPairs is pairs for a mapping whose keys are names (env, secrets, vars): each key that
// is not an identifier is reported as "NAME name %q: use RULE" with hint after it.
func (pd *planDecoder) identPairs(n *yaml.Node, what, name, hint string) [][2]*yaml.Node {
	pairs := pd.pairs(n, what)
	for _, kv := range pairs {
		if !identPattern.MatchString(kv[0].Value) {
			pd.errorf(kv[0], "%s name %q: use %s%s", name, kv[0].Value, identRule, hint)
		}
	}
	return pairs
}

// credentialPattern is the name of a systemd credential (LoadCredential=NAME:PATH), read from
// $CREDENTIALS_DIRECTORY/NAME: one file name, never a path ("..", "/"), and no character a
// unit file or a log line would have to quote. systemd allows more; these are the names
// people write.
var credentialPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,254}$`)

const credentialRule = "letters, digits and _ . @ -, not starting with . or -, at most 255"

// countNonEmpty is how many of ss are set.
func countNonEmpty(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

func (pd *planDecoder) secrets(n *yaml.Node) map[string]Secret {
	out := make(map[string]Secret)
	for _, kv := range pd.identPairs(n, "secrets", "secret", "") {
		k, v := kv[0], kv[1]
		s := Secret{Pos: pd.pos(v)}
		// A secret with an error in its declaration is not reported again as given to nothing.
		pd.badSecrets[k.Value] = true
		if v.Kind != yaml.MappingNode {
			// Never echo the value: it may be the secret itself.
			pd.errorf(v, "secret %s is an inline value; plans never hold secrets: write {file: /etc/refreshd/%s}, {env: %s} or {credential: %s}", k.Value, k.Value, k.Value, k.Value)
			out[k.Value] = s // declared, though broken: a step naming it is not wrong too
			continue
		}
		errs := len(pd.errs)
		pd.fields(v, "secret", []field{
			{"file", func(v *yaml.Node) { s.File = pd.absPath(v, "secret file") }},
			{"env", func(v *yaml.Node) {
				s.Env = pd.name(v, "secret env")
				if s.Env != "" && !identPattern.MatchString(s.Env) {
					pd.errorf(v, "secret env %q: want an environment variable name (%s)", s.Env, identRule)
				}
			}},
			{"credential", func(v *yaml.Node) {
				s.Credential = pd.name(v, "secret credential")
				if s.Credential != "" && !credentialPattern.MatchString(s.Credential) {
					pd.errorf(v, "secret credential %q: want a systemd credential name (%s)", s.Credential, credentialRule)
				}
			}},
		})
		if sources := countNonEmpty(s.File, s.Env, s.Credential); sources != 1 {
			pd.errorf(v, "secret %s needs exactly one of file: /abs/path, env: NAME or credential: NAME", k.Value)
			continue
		}
		if len(pd.errs) == errs {
			delete(pd.badSecrets, k.Value)
		}
		out[k.Value] = s
	}
	return out
}

func (pd *planDecoder) vars(n *yaml.Node) map[string]Var {
	out := make(map[string]Var)
	for _, kv := range pd.identPairs(n, "vars", "var", " (templates name it as .vars.NAME)") {
		k, v := kv[0], kv[1]
		vr := Var{Pos: pd.pos(v)}
		switch v.Kind {
		case yaml.SequenceNode:
			vr.IsList = true
			vr.List, _ = pd.strList(v, "var "+k.Value)
		default:
			vr.Scalar = pd.str(v, "var "+k.Value+" (a string or a list of strings)")
		}
		for _, s := range append(vr.List, vr.Scalar) {
			if isTemplate(s) {
				pd.errorf(v, "var %s: vars are literal values, not templates", k.Value)
				break
			}
		}
		out[k.Value] = vr
	}
	return out
}

func (pd *planDecoder) skipIf(n *yaml.Node) []SkipCondition {
	elems, ok := pd.list(n, "skip_if", "{branch: ...} or {image: ...}")
	if !ok {
		return nil
	}
	var out []SkipCondition
	for _, e := range elems {
		c := SkipCondition{Pos: pd.pos(resolve(e))}
		pd.fields(e, "skip_if condition", []field{
			{"branch", func(v *yaml.Node) {
				b := &BranchFreshness{}
				pd.fields(v, "skip_if branch", []field{
					{"repo", func(v *yaml.Node) {
						b.Repo = pd.nonEmpty(v, "repo")
						pd.argLiteral(v, argField{what: "skip_if branch repo", rule: safearg.GitRepo}, b.Repo)
					}},
					{"branch", func(v *yaml.Node) {
						b.Branch = pd.nonEmpty(v, "branch")
						pd.argLiteral(v, argField{what: "skip_if branch", rule: safearg.GitRef}, b.Branch)
					}},
					{"within", func(v *yaml.Node) { b.Within = pd.duration(v, "within") }},
				})
				if b.Repo == "" || b.Branch == "" || b.Within == 0 {
					pd.errorf(v, "skip_if branch needs repo, branch and within (e.g. within: 12h)")
				}
				c.Branch = b
			}},
			{"image", func(v *yaml.Node) {
				im := &ImageFreshness{}
				var refNode *yaml.Node
				pd.fields(v, "skip_if image", []field{
					{"ref", func(v *yaml.Node) { refNode = v; im.Ref = pd.nonEmpty(v, "ref") }},
					{"within", func(v *yaml.Node) { im.Within = pd.duration(v, "within") }},
				})
				if im.Ref == "" || im.Within == 0 {
					pd.errorf(v, "skip_if image needs ref and within (e.g. within: 12h)")
				}
				if refNode != nil && isCacheTag(im.Ref) {
					pd.warnf(refNode, "skip_if image %s looks like a BuildKit registry-cache tag: its manifest has no created time, so this condition can never be checked and every run refreshes; watch it with tags: {refs: [%s], within: %s} (refreshd remembers its digest and when it changed)", im.Ref, im.Ref, ShortDuration(im.Within))
				}
				c.Image = im
			}},
			{"tags", func(v *yaml.Node) { c.Tags = pd.tagsFreshness(v) }},
		})
		set := 0
		for _, b := range []bool{c.Branch != nil, c.Image != nil, c.Tags != nil} {
			if b {
				set++
			}
		}
		if set != 1 && resolve(e).Kind == yaml.MappingNode {
			pd.errorf(e, "a skip_if condition needs exactly one of branch:, image: or tags:")
			continue
		}
		out = append(out, c)
	}
	return out
}

func (pd *planDecoder) notify(n *yaml.Node) []Webhook {
	elems, ok := pd.list(n, "notify", "{url, format, on}")
	if !ok {
		return nil
	}
	var out []Webhook
	for _, e := range elems {
		w := Webhook{Pos: pd.pos(resolve(e)), Format: "json", On: []string{"failure", "recovery"}}
		var urlNode *yaml.Node
		pd.fields(e, "notify", []field{
			{"url", func(v *yaml.Node) { urlNode = v; w.URL = pd.nonEmpty(v, "url") }},
			{"format", func(v *yaml.Node) {
				w.Format = pd.str(v, "format")
				if w.Format != "json" && w.Format != "slack" {
					pd.errorf(v, "notify format %q: want json or slack", w.Format)
				}
			}},
			{"on", func(v *yaml.Node) {
				on, pos := pd.strList(v, "on")
				for i, s := range on {
					if s != "failure" && s != "recovery" && s != "success" {
						pd.errorAt(pos[i], "notify on %q: want failure, recovery or success", s)
					}
				}
				w.On = on
			}},
		})
		if urlNode == nil {
			if resolve(e).Kind == yaml.MappingNode {
				pd.errorf(e, "notify needs url:")
			}
			continue
		}
		if isTemplate(w.URL) {
			pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pd.pos(urlNode), text: w.URL, kind: tmplNotify})
		} else if w.URL != "" && !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
			pd.errorf(urlNode, "notify url must start with http:// or https:// (or be {{ .secrets.NAME }})")
		}
		out = append(out, w)
	}
	return out
}

// builders decodes the plan's builders: full definitions or {ref: NAME} of a shared one.
func (pd *planDecoder) builders(n *yaml.Node) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		pd.errorf(n, "builders must be a list of builders or {ref: NAME}, not %s", kindName(n))
		return
	}
	for _, e := range n.Content {
		e = resolve(e)
		if isRef(e) {
			var name string
			pd.fields(e, "builder reference", []field{{"ref", func(v *yaml.Node) { name = pd.name(v, "ref") }}})
			if name != "" {
				if _, dup := pd.refs[name]; dup {
					pd.errorf(e, "builder %q referenced twice", name)
				}
				pd.refs[name] = pd.pos(e)
			}
			continue
		}
		b := pd.builder(e)
		if b == nil {
			if name := builderName(e); name != "" {
				pd.broken[name] = true
			}
			continue
		}
		if first, dup := pd.p.Builders[b.Name]; dup {
			pd.errorAt(b.Pos, "builder %q declared twice in this plan (first at %s)", b.Name, first.Pos)
			continue
		}
		if pd.l.register(pd.decoder, b) {
			pd.p.Builders[b.Name] = b
		} else {
			pd.broken[b.Name] = true
		}
	}
}

// builderName returns the name: of a builder mapping, whatever else is wrong with it.
func builderName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			return resolve(n.Content[i+1]).Value
		}
	}
	return ""
}

func isRef(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "ref" {
			return true
		}
	}
	return false
}

func (pd *planDecoder) resolveRefs() {
	for _, name := range slices.Sorted(maps.Keys(pd.refs)) {
		pos := pd.refs[name]
		if _, inline := pd.p.Builders[name]; inline {
			pd.errorAt(pos, "builder %q is both declared in this plan and referenced; keep one", name)
			continue
		}
		b, ok := pd.l.builders[name]
		if !ok {
			known := slices.Sorted(maps.Keys(pd.l.builders))
			valid := "none are declared"
			if len(known) > 0 {
				valid = "declared: " + strings.Join(known, ", ")
			}
			pd.errorAt(pos, "builder %q is not declared in a shared builders file of this directory (%s)", name, valid)
			pd.broken[name] = true
			continue
		}
		pd.p.Builders[name] = b
	}
}

// builder decodes one builder definition.
func (d *decoder) builder(n *yaml.Node) *Builder {
	n = resolve(n)
	b := &Builder{Pos: d.pos(n), Driver: "docker-container", Emulation: EmulationForbid}
	errs := len(d.errs)
	var nodesNode *yaml.Node
	d.fields(n, "builder", []field{
		{"name", func(v *yaml.Node) {
			b.Name = d.name(v, "builder name")
			if b.Name != "" && !namePattern.MatchString(b.Name) {
				d.errorf(v, "builder name %q: use %s", b.Name, nameRule)
			}
		}},
		{"driver", func(v *yaml.Node) {
			b.Driver = d.str(v, "driver")
			switch b.Driver {
			case "docker-container", "remote", "kubernetes":
			default:
				d.errorf(v, "driver %q: want docker-container, remote or kubernetes", b.Driver)
			}
		}},
		{"emulation", func(v *yaml.Node) {
			s := d.str(v, "emulation")
			switch Emulation(s) {
			case EmulationForbid, EmulationWarn, EmulationAllow:
				b.Emulation = Emulation(s)
			default:
				d.errorf(v, "emulation %q: want forbid, warn or allow", s)
			}
		}},
		{"nodes", func(v *yaml.Node) {
			nodesNode = resolve(v)
			if nodesNode.Kind != yaml.SequenceNode {
				d.errorf(v, "nodes must be a list of {name, endpoint, platform}, not %s", kindName(nodesNode))
				return
			}
			for _, e := range nodesNode.Content {
				b.Nodes = append(b.Nodes, d.node(e, b))
			}
		}},
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if b.Driver == "remote" {
		// Checked once every key is read: driver: may come after nodes:.
		d.remoteEndpoints(nodesNode)
	}
	if b.Name == "" {
		d.errorf(n, "builder needs name:")
	}
	if nodesNode == nil || len(b.Nodes) == 0 {
		d.errorf(n, "builder %s needs nodes: at least one {name, endpoint, platform}", b.Name)
	}
	// Several nodes may share a platform: they are its pool, and buildx_cache spreads that
	// platform's builds over them.
	names := make(map[string]bool)
	for _, nd := range b.Nodes {
		if names[nd.Name] && nd.Name != "" {
			d.errorAt(nd.Pos, "node name %q repeated in builder %s", nd.Name, b.Name)
		}
		names[nd.Name] = true
	}
	if len(d.errs) > errs {
		return nil
	}
	return b
}

// remoteEndpoints checks the endpoints of a remote builder's nodes: a URL each.
func (d *decoder) remoteEndpoints(nodes *yaml.Node) {
	if nodes == nil || nodes.Kind != yaml.SequenceNode {
		return
	}
	for _, nd := range nodes.Content {
		nd = resolve(nd)
		for i := 0; nd.Kind == yaml.MappingNode && i+1 < len(nd.Content); i += 2 {
			v := resolve(nd.Content[i+1])
			if nd.Content[i].Value == "endpoint" && v.Kind == yaml.ScalarNode && v.Value != "" && v.Tag != "!!null" && !strings.Contains(v.Value, "://") {
				d.errorf(v, "endpoint %q of a remote node: want tcp://HOST:PORT or unix:///PATH", v.Value)
			}
		}
	}
}

func (d *decoder) node(n *yaml.Node, b *Builder) Node {
	nd := Node{Pos: d.pos(resolve(n))}
	d.fields(n, "node", []field{
		{"name", func(v *yaml.Node) {
			nd.Name = d.name(v, "node name")
			if nd.Name != "" && !namePattern.MatchString(nd.Name) {
				d.errorf(v, "node name %q: use %s", nd.Name, nameRule)
			}
		}},
		{"endpoint", func(v *yaml.Node) {
			nd.Endpoint = d.nonEmpty(v, "endpoint")
			if err := safearg.Operand(nd.Endpoint); nd.Endpoint != "" && err != nil {
				d.errorf(v, "endpoint %q: %v", nd.Endpoint, err)
			}
		}},
		{"platform", func(v *yaml.Node) { nd.Platform = d.platform(v) }},
		{"driver_opts", func(v *yaml.Node) {
			var pos map[string]Pos
			nd.DriverOpts, pos = d.strMap(v, "driver_opts")
			for k, p := range pos { // each becomes --driver-opt=K=V
				if err := safearg.Operand(k); err != nil || strings.Contains(k, "=") {
					d.errorAt(p, "driver option name %q: want a name without \"=\", not starting with \"-\"", k)
				} else if err := safearg.Text(nd.DriverOpts[k]); err != nil {
					d.errorAt(p, "driver option %s: %v", k, err)
				}
			}
		}},
		{"max_parallel", func(v *yaml.Node) { nd.MaxParallel = d.integer(v, "max_parallel", 1, 100) }},
	})
	if nd.MaxParallel == 0 {
		nd.MaxParallel = 1
	}
	if resolve(n).Kind == yaml.MappingNode && (nd.Name == "" || nd.Platform == "") {
		d.errorf(n, "a node needs name and platform (and endpoint unless the driver's default is wanted)")
	}
	return nd
}

func (d *decoder) platform(n *yaml.Node) string {
	s := d.str(n, "platform")
	if msg := checkPlatform(s); msg != "" {
		d.errorf(n, "%s", msg)
	}
	return s
}
