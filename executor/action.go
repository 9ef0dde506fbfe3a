package executor

import (
	"context"
	"fmt"
	"strings"

	"github.com/refreshd/refreshd/plan"
)

// action is a step instance's built-in action as the executor does it. Each kind lives in
// its own file, named in builtin below, and builds the argv it runs with the same function
// describe uses, so the dry run prints exactly what a real run executes.
type action interface {
	// run does the action for one attempt.
	run(ctx context.Context, t *Tools, a *Attempt) error
	// describe returns the action's operations, in order, for the dry run.
	describe(t *Tools) []Op
}

// previewer is an action whose dry run does more than print its operations: it computes,
// changing nothing outside the state directory, what the run would do (a.DryRun is set).
type previewer interface {
	preview(ctx context.Context, t *Tools, a *Attempt) error
}

// builtin is the executor's action for a plan action of plan p (nil: outside a plan): the
// one place that maps the plan's action types (plan/action.go) to the files that do them,
// one case per action. TestBuiltinCoversPlan fails when a plan action has none.
func builtin(act plan.Action, p *plan.Plan) (action, error) {
	switch act := act.(type) {
	case *plan.RunAction:
		return command{act}, nil
	case *plan.ProvisionAction:
		return provision{act}, nil
	case *plan.BuildxCacheAction:
		return buildxCache{act, declaredBuilder(p, act.Builder)}, nil
	case *plan.VerifyAction:
		return verifyCache{act}, nil
	case *plan.PublishAction:
		return publish{act}, nil
	case *plan.CheckoutAction:
		return checkout{act}, nil
	}
	return nil, fmt.Errorf("unknown action %T", act)
}

// Op is one operation of a dry run: a command, exactly as it runs (Argv), or another
// operation (Text: a registry request, a check, a git sequence), with an optional Note.
type Op struct {
	Argv []string
	Text string
	Note string
}

// String is the operation as one line: a command shell-quoted behind "$ ", so an operator
// can copy it and a shell would split it back into the same argv (nothing is ever passed to
// a shell), then the note as a comment.
func (o Op) String() string {
	s := o.Text
	if o.Argv != nil {
		s = "$ " + quoteArgv(o.Argv)
	}
	if o.Note != "" {
		s += "  # " + o.Note
	}
	return s
}

// Describe returns, for the dry run, the operations an instance of plan p performs, one
// line each (see Op.String). A nil tools means the defaults.
func Describe(p *plan.Plan, inst *plan.Instance, tools *Tools) []string {
	if tools == nil {
		tools = &Tools{}
	}
	act, err := builtin(inst.Action, p)
	if err != nil {
		return []string{err.Error()}
	}
	var lines []string
	for _, op := range act.describe(tools) {
		lines = append(lines, op.String())
	}
	return lines
}

// quoteArgv renders an argv as one line a POSIX shell would split back into the same
// elements. Elements with only safe characters stay bare.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = quoteArg(a)
	}
	return strings.Join(parts, " ")
}

func quoteArg(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%^", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
