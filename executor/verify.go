package executor

import (
	"context"
	"fmt"
	"strings"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// verifyCache checks every expected cache ref through the registry API and records its digest
// before and after, and whether it changed. A verify step does not see the registry before
// this run's builds, so "before" is the digest refreshd last recorded for the ref
// (Attempt.Previous): "" when it was absent or never recorded. A tag that vanished is a
// change too. Every ref is checked and recorded, a missing one as not verified with no
// digest, before the step fails, so the error lists all of them and the record (and the
// metrics made from it) counts them.
type verifyCache struct{ *plan.VerifyAction }

func (v verifyCache) run(ctx context.Context, t *Tools, a *Attempt) error {
	reg := t.registryClient(a.Log)
	var missing []string
	for _, ref := range v.Refs {
		digest, found, err := reg.Digest(ctx, ref)
		if err != nil {
			return fmt.Errorf("verify cache %s: %w", ref, err)
		}
		before, known := "", false
		if a.Previous != nil {
			before, known = a.Previous(ref)
		}
		if !found {
			digest = ""
		}
		a.observeTag(ref, digest, false)
		c := history.Cache{Ref: ref, Before: before, After: digest, Changed: before != digest, Verified: found}
		a.Record(func(s *history.Step) { s.Caches = setCache(s.Caches, c) })
		if !found {
			missing = append(missing, ref)
			a.Log.Warn("cache missing", "ref", ref, "before", before)
			continue
		}
		a.Log.Info("cache verified", "ref", ref, "digest", digest, "before", before, "changed", c.Changed, "previous_record", known)
	}
	if len(missing) > 0 {
		return fmt.Errorf("cache tags missing in the registry: %s", strings.Join(missing, ", "))
	}
	return nil
}

func (v verifyCache) describe(*Tools) []Op {
	var ops []Op
	for _, ref := range v.Refs {
		ops = append(ops, Op{Text: "HEAD " + ref, Note: "must exist"})
	}
	return ops
}
