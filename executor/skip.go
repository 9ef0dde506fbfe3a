package executor

import (
	"context"

	"github.com/refreshd/refreshd/plan"
)

// PLACEHOLDER: replaced by the owner of skip_if.
// checkSkip reports whether a run should be skipped because the project's CI refreshed recently.
func (t *Tools) checkSkip(ctx context.Context, p *plan.Plan, secrets map[string]string) (skip bool, reason string, err error) {
	return false, "", nil
}
