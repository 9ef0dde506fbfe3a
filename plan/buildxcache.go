package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/refreshd/refreshd/internal/safearg"
)

// The buildx_cache action: refresh the registry cache of a plain buildx project, one
// build per platform, each on the builder's node pinned to it.

func buildxCacheKind() actionKind {
	return actionKind{key: "buildx_cache", decode: (*planDecoder).buildxCache,
		credentials: "reads registry credentials from the daemon's docker config (DOCKER_CONFIG, as docker login writes it), never from a secret"}
}

// BuildxCache is the built-in per-platform registry cache refresh of a plain buildx project.
type BuildxCache struct {
	Builder   string
	Context   string // relative to the workdir
	File      string
	Target    string
	BuildArgs map[string]string
	Platforms []string // templates; each renders to one os/arch[/variant]
	// Ref is the cache repository (templated); the tag is cache-<os>-<arch>[-<variant>].
	Ref string
}

// BuildxCacheAction is one `docker buildx build` for one platform with registry cache.
type BuildxCacheAction struct {
	Builder   string
	Node      string // the node pinned to Platform: the one expected to build
	Platform  string
	Context   string
	File      string
	Target    string
	BuildArgs []KV   // sorted by key
	CacheRef  string // repository:cache-<os>-<arch>[-<variant>]
}

func (*BuildxCacheAction) Kind() string { return "buildx_cache" }

// The fields of a buildx_cache whose value reaches an argv, and their rules.
var (
	argContext = argField{"buildx_cache.context", "buildx_cache context", safearg.Operand}
	argFile    = argField{"buildx_cache.file", "buildx_cache file", optional(safearg.Operand)}
	argTarget  = argField{"buildx_cache.target", "buildx_cache target", optional(safearg.Operand)}
)

// argBuildArg is the field of one build arg's value: bound to its flag (--build-arg=K=V),
// so any text but a control character.
func argBuildArg(k string) argField {
	return argField{"buildx_cache.build_args." + k, "build arg " + k, safearg.Text}
}

func (pd *planDecoder) buildxCache(n *yaml.Node, s *Step) actionSpec {
	bc := &BuildxCache{Context: "."}
	s.BuildxCache = bc
	var platformsNode *yaml.Node
	pd.fields(n, "buildx_cache", []field{
		{"builder", func(v *yaml.Node) {
			bc.Builder = pd.name(v, "builder")
			s.at["buildx_cache.builder"] = pd.pos(v)
		}},
		{"context", func(v *yaml.Node) { bc.Context = pd.argTmpl(v, s, argContext) }},
		{"file", func(v *yaml.Node) { bc.File = pd.argTmpl(v, s, argFile) }},
		{"target", func(v *yaml.Node) { bc.Target = pd.argTmpl(v, s, argTarget) }},
		{"build_args", func(v *yaml.Node) { pd.buildArgs(v, s, bc) }},
		{"platforms", func(v *yaml.Node) { platformsNode = v; pd.platforms(v, s, bc) }},
		{"ref", func(v *yaml.Node) { bc.Ref = pd.tmpl(v, "ref", s, "buildx_cache.ref") }},
	})
	if resolve(n).Kind != yaml.MappingNode {
		return bc
	}
	if bc.Builder == "" {
		pd.errorf(n, "buildx_cache needs builder: NAME (a builder of the plan)")
	}
	if bc.Ref == "" {
		pd.errorf(n, "buildx_cache needs ref: REPOSITORY (the cache tag is added per platform)")
	}
	if platformsNode == nil {
		pd.errorf(n, "buildx_cache needs platforms: [linux/amd64, ...]")
	} else if len(bc.Platforms) == 0 && resolve(platformsNode).Kind == yaml.SequenceNode {
		pd.errorf(platformsNode, "platforms is empty; want at least one, like [linux/amd64, linux/arm64]")
	}
	return bc
}

// buildArgs decodes build_args: {NAME: TEMPLATE}.
func (pd *planDecoder) buildArgs(v *yaml.Node, s *Step, bc *BuildxCache) {
	var pos map[string]Pos
	bc.BuildArgs, pos = pd.strMap(v, "build_args")
	for k, p := range pos {
		s.at["buildx_cache.build_args."+k] = p
		pd.tmpls = append(pd.tmpls, pendingTemplate{pos: p, text: bc.BuildArgs[k], kind: tmplStep, step: s})
		if err := safearg.Operand(k); err != nil || strings.Contains(k, "=") {
			pd.errorAt(p, "build arg name %q: want a name without \"=\", not starting with \"-\"", k)
		} else if !isTemplate(bc.BuildArgs[k]) {
			if err := argBuildArg(k).rule(bc.BuildArgs[k]); err != nil {
				pd.errorAt(p, "build arg %s %q: %v", k, bc.BuildArgs[k], err)
			}
		}
	}
}

// platforms decodes platforms: a list of platforms (or templates), or "{{ .vars.LIST }}"
// (resolvePlatforms reads the list once the vars are known).
func (pd *planDecoder) platforms(v *yaml.Node, s *Step, bc *BuildxCache) {
	v = resolve(v)
	if v.Kind == yaml.ScalarNode {
		if m := listRefPattern.FindStringSubmatch(v.Value); m != nil {
			bc.Platforms = []string{v.Value}
			s.at["buildx_cache.platforms.0"] = pd.pos(v)
			return
		}
	}
	var pos []Pos
	bc.Platforms, pos = pd.strList(v, "platforms")
	for i, p := range bc.Platforms {
		s.at[fmt.Sprintf("buildx_cache.platforms.%d", i)] = pos[i]
		if isTemplate(p) {
			pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pos[i], text: p, kind: tmplStep, step: s})
		} else if msg := checkPlatform(p); msg != "" {
			pd.errorAt(pos[i], "%s", msg)
		}
	}
}

func (bc *BuildxCache) builder() string { return bc.Builder }

// instances: one build per platform.
func (bc *BuildxCache) instances() int { return max(len(bc.Platforms), 1) }

func (bc *BuildxCache) check(pd *planDecoder, s *Step) { pd.resolvePlatforms(s) }

// resolvePlatforms replaces a "{{ .vars.LIST }}" platforms value by the list and checks it.
func (pd *planDecoder) resolvePlatforms(s *Step) {
	bc := s.BuildxCache
	if len(bc.Platforms) != 1 {
		return
	}
	m := listRefPattern.FindStringSubmatch(bc.Platforms[0])
	if m == nil {
		return
	}
	pos := s.at["buildx_cache.platforms.0"]
	if _, late := pd.runtime[m[1]]; late {
		return // refused by checkRuntimeVars, which says why
	}
	v, ok := pd.p.Vars[m[1]]
	if !ok || !v.IsList {
		pd.errorAt(pos, "platforms names %q, which is not a list var; vars: %s", m[1], scope{vars: pd.p.Vars}.valid())
		return
	}
	bc.Platforms = slices.Clone(v.List)
	for i, p := range bc.Platforms {
		s.at[fmt.Sprintf("buildx_cache.platforms.%d", i)] = pos
		if msg := checkPlatform(p); msg != "" {
			pd.errorAt(pos, "%s (from var %s)", msg, m[1])
		}
	}
	if len(bc.Platforms) == 0 {
		pd.errorAt(pos, "platforms: var %q is an empty list", m[1])
	}
}

// expand adds one instance per platform, each on the node pinned to it.
func (bc *BuildxCache) expand(x *expander, s *Step, base *Instance, data map[string]any) {
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
		node := pinnedNode(b, platform)
		if node == "" {
			var nodes []string
			for _, n := range b.Nodes {
				nodes = append(nodes, n.Name+" ("+n.Platform+")")
			}
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

// pinnedNode is the name of b's last node pinned to platform, or "".
func pinnedNode(b *Builder, platform string) string {
	node := ""
	for _, n := range b.Nodes {
		if n.Platform == platform {
			node = n.Name
		}
	}
	return node
}
