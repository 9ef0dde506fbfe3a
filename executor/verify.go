package executor

import (
	"context"
	"fmt"
	"strings"

	"github.com/refreshd/refreshd/executor/history"
	"github.com/refreshd/refreshd/plan"
)

// verify checks every expected cache ref through the registry API and records its digest.
// Every ref is checked even after one is missing, so the error lists all of them.
func (t *Tools) verify(ctx context.Context, a *Attempt, act *plan.VerifyAction) error {
	reg := t.registryClient(a.Log)
	var missing []string
	for _, ref := range act.Refs {
		digest, found, err := reg.Digest(ctx, ref)
		if err != nil {
			return fmt.Errorf("verify cache %s: %w", ref, err)
		}
		a.Record(func(s *history.Step) {
			s.Caches = setCache(s.Caches, history.Cache{Ref: ref, After: digest, Verified: found})
		})
		if !found {
			missing = append(missing, ref)
			continue
		}
		a.Log.Info("cache verified", "ref", ref, "digest", digest)
	}
	if len(missing) > 0 {
		return fmt.Errorf("cache tags missing in the registry: %s", strings.Join(missing, ", "))
	}
	return nil
}

// describeVerify returns the exact operations the action performs, for the dry run.
func (t *Tools) describeVerify(act *plan.VerifyAction) []string {
	var ops []string
	for _, ref := range act.Refs {
		ops = append(ops, "HEAD "+ref+"  # must exist")
	}
	return ops
}
