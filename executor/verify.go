package executor

import (
	"context"
	"errors"

	"github.com/refreshd/refreshd/plan"
)

// PLACEHOLDER: replaced by the owner of this action.
func (t *Tools) verify(ctx context.Context, a *Attempt, act *plan.VerifyAction) error {
	return errors.New("verify: not implemented yet")
}

// describeVerify returns the exact operations the action performs, for the dry run.
func (t *Tools) describeVerify(act *plan.VerifyAction) []string {
	return []string{"verify (not implemented yet)"}
}
