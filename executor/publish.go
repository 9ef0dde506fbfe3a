package executor

import (
	"context"
	"errors"

	"github.com/refreshd/refreshd/plan"
)

// PLACEHOLDER: replaced by the owner of this action.
func (t *Tools) publish(ctx context.Context, a *Attempt, act *plan.PublishAction) error {
	return errors.New("publish: not implemented yet")
}

// describePublish returns the exact operations the action performs, for the dry run.
func (t *Tools) describePublish(act *plan.PublishAction) []string {
	return []string{"publish (not implemented yet)"}
}
