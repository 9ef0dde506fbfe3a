package executor

import (
	"context"
	"errors"

	"github.com/refreshd/refreshd/plan"
)

// PLACEHOLDER: replaced by the owner of this action.
func (t *Tools) provision(ctx context.Context, a *Attempt, act *plan.ProvisionAction) error {
	return errors.New("provision: not implemented yet")
}

// describeProvision returns the exact operations the action performs, for the dry run.
func (t *Tools) describeProvision(act *plan.ProvisionAction) []string {
	return []string{"provision (not implemented yet)"}
}
