package executor

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// Two plans whose run steps drive one builder themselves (as breeze does): each step holds
// every node of the builder, so the steps never overlap.
func TestBuilderLockSerialisesRunSteps(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	mk := func(name string) *plan.Graph {
		prov := step("use", "sleep", "0.3")
		prov.Builder = "shared"
		shared := &plan.Builder{Name: "shared", Nodes: []plan.Node{
			{Name: "shared0", Platform: "linux/amd64", MaxParallel: 1},
			{Name: "shared1", Platform: "linux/amd64", MaxParallel: 2},
		}}
		return graph(&plan.Plan{Name: name, Builders: map[string]*plan.Builder{"shared": shared}}, prov)
	}
	var wg sync.WaitGroup
	runs := make([]*history.Run, 2)
	for i, name := range []string{"one", "two"} {
		wg.Go(func() {
			r, err := e.Run(context.Background(), mk(name), RunSpec{})
			if err != nil {
				t.Error(err)
			}
			runs[i] = r
		})
	}
	wg.Wait()
	a, b := runs[0].Steps[0], runs[1].Steps[0]
	if a.Status != history.StatusSucceeded || b.Status != history.StatusSucceeded {
		t.Fatalf("steps %s, %s", a.Status, b.Status)
	}
	// The attempts' times: a step's own start includes its wait for the lock.
	x, y := a.Attempts[0], b.Attempts[0]
	if x.Start.Before(y.End) && y.Start.Before(x.End) {
		t.Errorf("runs on one builder overlapped: [%s %s] [%s %s]", x.Start.Format("05.000"), x.End.Format("05.000"), y.Start.Format("05.000"), y.End.Format("05.000"))
	}
}

func TestDryRunExecutesNothing(t *testing.T) {
	t.Parallel()
	e := newEngineT(t, time.Second)
	work := t.TempDir()
	p := &plan.Plan{Name: "test", Workdir: work}
	r, err := e.Run(context.Background(), graph(p, step("touch", "touch", "made-it")), RunSpec{DryRun: true})
	if err != nil || r.Status != history.StatusSucceeded {
		t.Fatalf("dry run: %v %v", r, err)
	}
	if _, err := os.Stat(work + "/made-it"); err == nil {
		t.Error("the dry run executed the step")
	}
	data, _ := os.ReadFile(r.Steps[0].Attempts[0].Log)
	if string(data) != "dry run: $ touch made-it\n" {
		t.Errorf("dry run output %q", data)
	}
}
