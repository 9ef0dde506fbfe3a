package plan

import "gopkg.in/yaml.v3"

// The verify_cache action: check that cache refs exist in the registry.

func verifyKind() actionKind {
	return actionKind{key: "verify_cache", decode: (*planDecoder).verifyCache,
		credentials: "reads registry credentials from the daemon's docker config (DOCKER_CONFIG, as docker login writes it), never from a secret"}
}

// VerifyCache checks that cache refs exist in the registry.
type VerifyCache struct {
	Ref string // template
}

// VerifyAction checks cache refs in the registry.
type VerifyAction struct {
	Refs []string
}

func (*VerifyAction) Kind() string { return "verify_cache" }

func (pd *planDecoder) verifyCache(v *yaml.Node, s *Step) actionSpec {
	vc := &VerifyCache{}
	pd.fields(v, "verify_cache", []field{
		{"ref", func(v *yaml.Node) { vc.Ref = pd.tmpl(v, "ref", s, "verify_cache.ref") }},
	})
	if vc.Ref == "" && resolve(v).Kind == yaml.MappingNode {
		pd.errorf(v, "verify_cache needs ref: REPOSITORY:TAG (a template)")
	}
	return vc
}

func (vc *VerifyCache) expand(x *expander, s *Step, base *Instance, data map[string]any) {
	ref := x.render(s, "verify_cache.ref", vc.Ref, data)
	if !hasTag(ref) {
		x.errorf(s.at["verify_cache.ref"], "verify_cache ref renders to %q, which has no :TAG or @DIGEST", ref)
	} else {
		x.check(s, "verify_cache.ref", checkImageRef("verify_cache ref", ref))
	}
	base.Action = &VerifyAction{Refs: []string{ref}}
	x.add(base)
}
