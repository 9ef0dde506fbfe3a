package executor

import (
	"fmt"
	"strings"

	"github.com/refreshd/refreshd/plan"
)

// Describe returns, for the dry run, the exact operations an instance performs: the argv of a
// run step (quoted for display only: nothing is ever passed to a shell), or the buildx, git
// and registry operations of a built-in action. A nil tools means the defaults.
func Describe(inst *plan.Instance, tools *Tools) []string {
	if tools == nil {
		tools = &Tools{}
	}
	switch act := inst.Action.(type) {
	case *plan.RunAction:
		return []string{QuoteArgv(act.Argv)}
	case *plan.ProvisionAction:
		return tools.describeProvision(act)
	case *plan.BuildxCacheAction:
		return tools.describeBuildCache(act)
	case *plan.VerifyAction:
		return tools.describeVerify(act)
	case *plan.PublishAction:
		return tools.describePublish(act)
	default:
		return []string{fmt.Sprintf("unknown action %T", inst.Action)}
	}
}

// QuoteArgv renders an argv as one line a POSIX shell would split back into the same
// elements, so an operator can copy it. Elements with only safe characters stay bare.
func QuoteArgv(argv []string) string {
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
