package plan

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Built-in actions. A step does exactly one action, named by its key. Each action is one
// file of this package (run.go, checkout.go, buildxcache.go, publish.go, verify.go): what
// the step writes (an actionSpec, decoded), its decoder, its expansion into the graph's
// Action, that Action's Kind, and an actionKind saying which rules of a step apply to it.
// builtinActions lists them: the step decoder, the messages naming the actions, the
// outputs, report and secrets rules, and the schema test (TestSchemaActions) all read that
// list, so adding an action is its file, one line there, its schema fragment and its
// executor file. Provisioning (provision.go) is not written in steps: the expansion adds
// it before the first instance using a builder.

// builtinActions are the actions a step may do, in the order messages list them.
func builtinActions() []actionKind {
	return []actionKind{runKind(), checkoutKind(), buildxCacheKind(), publishKind(), verifyKind()}
}

// actionKind is one built-in action: its step key, its decoder and the step rules it
// is held to. TestSchemaActions checks plan/schema.json against these.
type actionKind struct {
	key string // the step key, and the Kind of the instances it expands to
	// decode reads the key's value for step s, recording the places of its values in
	// s.at, and returns the action as written.
	decode func(pd *planDecoder, v *yaml.Node, s *Step) actionSpec
	// secrets, report and outputs say whether a step of this action may name secrets: for
	// its environment, write a test report: and define vars from its outputs: (all three
	// are for a program the step runs itself).
	secrets, report, outputs bool
	// credentials says, for an action without secrets: or token:, where its credentials
	// come from instead (the message refusing secrets: on it).
	credentials string
	// noMatrix, when set, is why a step of this action has no matrix.
	noMatrix string
	// successOnly, when set, is why a step of this action runs only with when: success;
	// doing is what the step does, for the message.
	successOnly, doing string
}

// actionSpec is a step's action as the plan writes it, decoded (kept in Step.actions).
type actionSpec interface {
	// expand renders the action for one matrix combination of step s (data is its
	// template data) and adds base to the graph with its Action set, or the instances
	// made from base.
	expand(x *expander, s *Step, base *Instance, data map[string]any)
}

// tokenSpec is an action that takes one plan secret, as its token: key.
type tokenSpec interface {
	token() string
}

// builderSpec is an action that uses a builder of its own (which it provisions and locks).
type builderSpec interface {
	builder() string
}

// fanOutSpec is an action that expands to more than one instance per matrix combination.
type fanOutSpec interface {
	instances() int
}

// checkSpec is an action with checks across the plan (builders, vars), made once every
// step is decoded.
type checkSpec interface {
	check(pd *planDecoder, s *Step)
}

// ActionKinds are the Kinds of the built-in actions' instances (their step keys), and
// "provision", which the expansion adds.
func ActionKinds() []string { return append(actionKeys(), "provision") }

// actionKeys are the step keys of the built-in actions, in builtinActions' order.
func actionKeys() []string {
	var keys []string
	for _, k := range builtinActions() {
		keys = append(keys, k.key)
	}
	return keys
}

// stepAction is one action key of a step, decoded.
type stepAction struct {
	kind actionKind
	spec actionSpec
}

// action is the action of step s, as decoded; nil when s does not name exactly one.
func (s *Step) action() *stepAction {
	if len(s.actions) != 1 {
		return nil
	}
	return &s.actions[0]
}

// anyAction reports whether one of the actions step s names (exactly one in a valid plan)
// has the property.
func (s *Step) anyAction(has func(k *actionKind) bool) bool {
	for i := range s.actions {
		if has(&s.actions[i].kind) {
			return true
		}
	}
	return false
}

// checkStepAction holds the actions of step s to their kinds' rules (a step naming several is
// an error of its own).
func (pd *planDecoder) checkStepAction(s *Step) {
	for _, a := range s.actions {
		k := a.kind
		if k.successOnly != "" && s.When != WhenSuccess {
			pd.errorAt(s.at["when"], "step %s %s with when: %s; %s", s.ID, k.doing, s.When, k.successOnly)
		}
		if b, ok := a.spec.(builderSpec); ok && s.Builder != "" && s.Builder != b.builder() {
			pd.errorAt(s.at["builder"], "step builder %q differs from %s builder %q; a %s step uses its own builder", s.Builder, k.key, b.builder(), k.key)
		}
	}
	a := s.action()
	if a == nil {
		return
	}
	if s.Report != nil && !a.kind.report {
		pd.errorAt(s.at["report"], "report: is for run steps (a test command writing a JUnit report); a %s step has its own record", a.kind.key)
	}
	if len(s.Secrets) > 0 && !a.kind.secrets {
		pd.errorAt(s.at["secrets"], "%s", builtinSecretsMsg(a, s.Secrets))
	}
}

// builtinSecretsMsg says where the credentials of a built-in action come from instead of
// secrets:, and what to write.
func builtinSecretsMsg(a *stepAction, secrets []string) string {
	key := a.kind.key
	if _, ok := a.spec.(tokenSpec); ok {
		if len(secrets) == 1 {
			return fmt.Sprintf("secrets: is for run steps; a %s step takes its secret as its token: remove secrets: and write token: %s in %s:", key, secrets[0], key)
		}
		return fmt.Sprintf("secrets: is for run steps; a %s step takes one secret, as its token (%s: {token: NAME}): remove secrets:", key, key)
	}
	return fmt.Sprintf("secrets: is for run steps; a %s step %s: remove secrets:", key, a.kind.credentials)
}

// checkActionPlan makes the checks of step s's actions across the plan: its builder, its
// token and its own (checkSpec).
func (pd *planDecoder) checkActionPlan(s *Step) {
	for _, a := range s.actions {
		k := a.kind
		if b, ok := a.spec.(builderSpec); ok {
			pd.checkBuilder(s, b.builder(), k.key+".builder")
		}
		if t, ok := a.spec.(tokenSpec); ok && t.token() != "" && !hasSecret(pd.p.Secrets, t.token()) {
			pd.errorAt(s.at[k.key+".token"], "token %q is not a secret of the plan; secrets: %s", t.token(), secretNames(pd.p.Secrets))
		}
		if k.noMatrix != "" && len(s.Matrix) > 0 {
			pd.errorAt(s.Pos, "%s step %s has a matrix; %s", k.key, s.ID, k.noMatrix)
		}
		if c, ok := a.spec.(checkSpec); ok {
			c.check(pd, s)
		}
	}
}

// tokens are the secrets step s's actions take as their token.
func (s *Step) tokens() []string {
	var out []string
	for _, a := range s.actions {
		if t, ok := a.spec.(tokenSpec); ok && t.token() != "" {
			out = append(out, t.token())
		}
	}
	return out
}
