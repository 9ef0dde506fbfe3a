package daemon

import (
	"context"
	"fmt"

	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// Executor is the daemon's Engine over the real executor: expand the plan, run the graph.
// Its Engine is set after daemon.New, because the engine reports to the daemon's Observer.
type Executor struct {
	Engine *executor.Engine
}

// Run implements Engine.
func (x *Executor) Run(ctx context.Context, p *plan.Plan, req RunRequest) (*history.Run, error) {
	g, err := plan.ExpandRun(p, req.Params)
	if err != nil {
		return nil, fmt.Errorf("expand plan %s: %w", p.Name, err)
	}
	return x.Engine.Run(ctx, g, executor.RunSpec{ID: req.ID, Trigger: req.Trigger, Scheduled: req.Scheduled})
}
