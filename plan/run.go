package plan

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// The run action: run: [argv...], executed directly, never through a shell. The only
// action whose step may name secrets: for its environment, write a test report: (a test
// gate) and define vars from its outputs:.

func runKind() actionKind {
	return actionKind{key: "run", decode: (*planDecoder).run, secrets: true, report: true, outputs: true}
}

// RunAction executes an argv directly, never through a shell.
type RunAction struct {
	Argv []string
	// JUnit is the test report the step writes (report: junit:), relative to its
	// workdir; "" for a step that is not a test gate.
	JUnit string
}

func (*RunAction) Kind() string { return "run" }

// runSpec is a run step's action as written: its argv is Step.Run, its report Step.Report.
type runSpec struct{}

// run decodes a step's argv: a list, never a shell string; each element a template.
func (pd *planDecoder) run(v *yaml.Node, s *Step) actionSpec {
	if resolve(v).Kind == yaml.ScalarNode {
		pd.errorf(v, "run is an argv list, never a shell string: write %s", flowKey("run", strings.Fields(resolve(v).Value)))
		return runSpec{}
	}
	var pos []Pos
	s.Run, pos = pd.strList(v, "run")
	if len(s.Run) == 0 && resolve(v).Kind == yaml.SequenceNode {
		pd.errorf(v, "run is empty; want [program, args...]")
	}
	for i, a := range s.Run {
		key := fmt.Sprintf("run.%d", i)
		s.at[key] = pos[i]
		pd.tmpls = append(pd.tmpls, pendingTemplate{pos: pos[i], text: a, kind: tmplStep, step: s})
	}
	if len(s.Run) > 0 && s.Run[0] == "" {
		pd.errorAt(pos[0], "run's program (first element) is empty")
	}
	return runSpec{}
}

func (runSpec) expand(x *expander, s *Step, base *Instance, data map[string]any) {
	argv := make([]string, len(s.Run))
	for i, a := range s.Run {
		argv[i] = x.render(s, fmt.Sprintf("run.%d", i), a, data)
	}
	act := &RunAction{Argv: argv}
	if s.Report != nil {
		act.JUnit = x.render(s, "report.junit", s.Report.JUnit, data)
		x.check(s, "report.junit", checkRelPath("report junit", act.JUnit))
		if act.JUnit == "" {
			x.check(s, "report.junit", "report junit renders to an empty path")
		}
	}
	base.Action = act
	x.add(base)
}
