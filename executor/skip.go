package executor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/refreshd/refreshd/executor/gitpub"
	"github.com/refreshd/refreshd/plan"
)

// checkSkip reports whether a run should be skipped because the project's CI refreshed
// recently: a constraints branch whose last commit, or an image whose config `created`, is
// newer than the condition's window. The first condition that holds gives the reason.
func (t *Tools) checkSkip(ctx context.Context, p *plan.Plan, secrets map[string]string) (skip bool, reason string, err error) {
	now := time.Now()
	for _, c := range p.SkipIf {
		switch {
		case c.Branch != nil:
			at, err := gitpub.LastCommitTime(ctx, c.Branch.Repo, c.Branch.Branch, []string{"GIT_TERMINAL_PROMPT=0"})
			if err != nil {
				return false, "", fmt.Errorf("skip_if at %s: %w", c.Pos, err)
			}
			if age := now.Sub(at); age < c.Branch.Within {
				return true, fmt.Sprintf("branch %s last commit %s ago (%s), within %s", c.Branch.Branch, age.Round(time.Second), at.UTC().Format(time.RFC3339), c.Branch.Within), nil
			}
		case c.Image != nil:
			at, err := t.registryClient(slog.Default()).ImageCreated(ctx, c.Image.Ref)
			if err != nil {
				return false, "", fmt.Errorf("skip_if at %s: %w", c.Pos, err)
			}
			if age := now.Sub(at); age < c.Image.Within {
				return true, fmt.Sprintf("image %s created %s ago (%s), within %s", c.Image.Ref, age.Round(time.Second), at.UTC().Format(time.RFC3339), c.Image.Within), nil
			}
		}
	}
	return false, "", nil
}
