package executor

import (
	"context"
	"fmt"

	"github.com/refreshd/refreshd/plan"
)

// command is a run step: its argv, executed directly (never through a shell) in the step's
// process group.
type command struct{ *plan.RunAction }

func (c command) run(ctx context.Context, _ *Tools, a *Attempt) error {
	st, err := a.Exec(ctx, "", c.Argv)
	if err != nil {
		return err
	}
	switch {
	case st.Signal != "":
		return fmt.Errorf("killed by signal %s", st.Signal)
	case st.Code != 0:
		return fmt.Errorf("exit code %d", st.Code)
	}
	return nil
}

func (c command) describe(*Tools) []Op { return []Op{{Argv: c.Argv}} }
