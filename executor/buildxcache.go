package executor

import (
	"context"
	"errors"

	"github.com/refreshd/refreshd/plan"
)

// PLACEHOLDER: replaced by the owner of this action.
func (t *Tools) buildCache(ctx context.Context, a *Attempt, act *plan.BuildxCacheAction) error {
	return errors.New("buildCache: not implemented yet")
}

// describeBuildCache returns the exact operations the action performs, for the dry run.
func (t *Tools) describeBuildCache(act *plan.BuildxCacheAction) []string {
	return []string{"buildCache (not implemented yet)"}
}
