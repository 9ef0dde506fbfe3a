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

// Action is what an instance does: one type per built-in action, each in the action's file
// (plan/action.go lists them), and ProvisionAction, which the expansion adds per builder.
// Its Kind is the action's step key ("provision"). The exact commands each performs are
// the executor's to say (the dry run), since they depend on the outside programs it
// drives.
type Action interface {
	Kind() string
}
