package plan

import (
	"fmt"
	"time"
)

// Graph is a plan expanded into concrete step instances, in a deterministic topological order.
type Graph struct {
	Plan      *Plan
	Instances []*Instance
	// Params are the run's parameters, every one with its value (given or default).
	Params map[string]string

	// x keeps the expansion's state, so Extend adds instances at run time.
	x *expander
}

// Instance is one concrete step run: a step with its matrix values bound and every template
// rendered. Its Action is exactly one of the *Action types below.
type Instance struct {
	ID     string // step id, plus "[k=v,...]" for matrix instances and "[platform]" for builds
	Step   *Step
	Values []KV     // matrix bindings, in axis order
	Needs  []string // instance IDs that must all succeed first
	Level  int      // 0 for no needs; instances of one level may run in parallel
	// ConcurrencyKey groups instances that share the step's Concurrency budget: the step id,
	// plus the platform for buildx builds (builds on different nodes run side by side).
	ConcurrencyKey string
	Builder        string // builder this instance uses and locks, if any
	Timeout        time.Duration
	Retry          Retry
	Workdir        string
	Env            map[string]string
	Action         Action
	// Expects are the step's expect: checks, rendered for this instance.
	Expects []Expectation
	// Data is the template data the instance was rendered with (.plan, .instance, .params,
	// .vars and its matrix values): what its run-time templates, like a commit message, add to.
	Data map[string]any
}

// Expectation is one expect: check of an instance, rendered: That must equal Equals.
type Expectation struct {
	Pos          Pos
	That, Equals string
	Why          string
}

// Failed says why the check does not hold, naming both values; "" when it holds.
func (e Expectation) Failed() string {
	if e.That == e.Equals {
		return ""
	}
	msg := fmt.Sprintf("expect at %s: %q, want %q", e.Pos, e.That, e.Equals)
	if e.Why != "" {
		msg += " (" + e.Why + ")"
	}
	return msg
}

// KV is one bound matrix value.
type KV struct {
	Key   string
	Value string
}

// Action is what an instance does: one of *RunAction, *CheckoutAction, *ProvisionAction,
// *BuildxCacheAction, *PublishAction, *VerifyAction. The exact commands each performs are the executor's to say
// (the dry run), since they depend on the outside programs it drives.
type Action interface {
	Kind() string
}

// RunAction executes an argv directly, never through a shell.
type RunAction struct {
	Argv []string
	// JUnit is the test report the step writes (report: junit:), relative to its
	// workdir; "" for a step that is not a test gate.
	JUnit string
}

// ProvisionAction makes a buildx builder match its declaration and checks its nodes
// (running, native platform). Expansion adds one before the first instance using a builder.
type ProvisionAction struct {
	Builder *Builder
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

// PublishAction publishes constraint files to a branch.
type PublishAction struct {
	PublishConstraints
}

// CheckoutAction brings Path (the instance's workdir when "") to Ref of Repo.
type CheckoutAction struct {
	Checkout
}

// VerifyAction checks cache refs in the registry.
type VerifyAction struct {
	Refs []string
}
