package executor

import (
	"sync"

	"github.com/refreshd/refreshd/history"
)

// previousDigests is what earlier runs of a plan last recorded for each cache ref. It is
// read from the store once per run, on the first question (once: safe for the run's
// attempts to ask at once): a plan verifies many refs and listing runs decodes them all.
type previousDigests struct {
	env *runEnv
	rec *recorder

	once    sync.Once
	digests map[string]string // ref -> digest after the latest earlier run that recorded it ("" = absent)
}

func newPreviousDigests(env *runEnv, rec *recorder) *previousDigests {
	return &previousDigests{env: env, rec: rec}
}

// digest is Attempt.Previous for instance self: the digest ref had before this run.
// Another step of this run that recorded the ref read its "before" from the registry
// itself (a cache build does, ahead of the build), which is the truth for this run even
// when something outside refreshd pushed the ref since the last run; without one, the
// latest earlier run that recorded the ref says what it was.
func (p *previousDigests) digest(self, ref string) (string, bool) {
	if d, ok := p.rec.cacheBefore(self, ref); ok {
		return d, true
	}
	p.once.Do(func() { p.digests = p.load() })
	d, ok := p.digests[ref]
	return d, ok
}

// load reads the plan's earlier runs, newest first, and keeps for each ref the digest of
// the newest run that recorded it; within a run the last step to record a ref (graph
// order: a verify after the build) has the final word. Dry runs record nothing. A store
// that cannot be read leaves every ref without a previous record (logged): the verify
// still checks the registry, it just cannot say what changed.
func (p *previousDigests) load() map[string]string {
	env := p.env
	runs, err := env.e.cfg.Store.Runs(env.p.Name, 0)
	if err != nil {
		env.log.Error("read earlier runs for previous cache digests", "err", err)
		return nil
	}
	digests := map[string]string{}
	for _, r := range runs {
		if r.ID == env.spec.ID || r.DryRun {
			continue
		}
		for ref, d := range lastCacheDigests(r) {
			if _, newer := digests[ref]; !newer {
				digests[ref] = d
			}
		}
	}
	return digests
}

// lastCacheDigests is each ref's digest as the last step of r that recorded it saw it.
func lastCacheDigests(r *history.Run) map[string]string {
	m := map[string]string{}
	for _, s := range r.Steps {
		for _, c := range s.Caches {
			m[c.Ref] = c.After
		}
	}
	return m
}
