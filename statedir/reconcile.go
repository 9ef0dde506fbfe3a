package statedir

import (
	"context"
	"fmt"
	"time"

	"github.com/refreshd/refreshd/history"
)

// reconcileTimeout bounds the check of one interrupted publish: an unreachable remote must
// not hold the start-up for long. The check's outcome, failure included, is recorded.
const reconcileTimeout = 30 * time.Second

// reconcilePublishes makes the record of each interrupted run's publish say what the
// branch says: a commit handed to git push before the kill or stop (Publish.Pushing) is
// looked up on the remote branch (and the push finished when the branch could still take
// it: git.Reconcile). Found, it is recorded as the publish's commit; absent, as not
// published; in both cases, and when the remote cannot tell, Publish.Reconciled says so.
// The process groups of the killed refreshd are already stopped, so no git push of it is
// still on its way; the remote's receive-pack may be, which git.Reconcile settles.
func (d Dir) reconcilePublishes(ctx context.Context, store *history.Store, ids []string, o Options) {
	for _, id := range ids {
		r, err := store.Run(id)
		if err != nil {
			o.Log.Error("read interrupted run to reconcile its publish", "run", id, "err", err)
			continue
		}
		changed := false
		for i := range r.Steps {
			p := r.Steps[i].Publish
			if p == nil || p.Pushing == "" || p.Commit != "" || p.Reconciled != "" || o.Reconcile == nil {
				continue
			}
			d.reconcile(ctx, r, &r.Steps[i], o)
			changed = true
		}
		if changed && o.Reconcile != nil {
			if err := store.SaveRun(r); err != nil {
				o.Log.Error("record reconciled publish", "run", id, "err", err)
			}
		}
	}
}

// reconcile checks step s's pushed commit on its branch and records the answer.
func (d Dir) reconcile(ctx context.Context, r *history.Run, s *history.Step, o Options) {
	p := s.Publish
	log := o.Log.With("plan", r.Plan, "run", r.ID, "step", s.Instance, "branch", p.Branch, "commit", p.Pushing)
	ctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	onBranch, err := o.Reconcile(ctx, d.Root, r.Plan, *p)
	switch {
	case err != nil:
		p.Reconciled = fmt.Sprintf("interrupted while pushing %s; could not check the branch at restart: %v", p.Pushing, err)
		log.Error("could not tell whether an interrupted publish reached the branch", "err", err)
	case onBranch:
		p.Commit = p.Pushing
		p.Reconciled = fmt.Sprintf("interrupted while pushing; commit %s on branch %s at restart (a push the branch could still take is finished first, never forced): published", p.Pushing, p.Branch)
		log.Warn("an interrupted publish reached the branch; recorded as published")
	default:
		p.Reconciled = fmt.Sprintf("interrupted while pushing; commit %s not on branch %s at restart: not published", p.Pushing, p.Branch)
		log.Warn("an interrupted publish did not reach the branch; recorded as not published")
	}
}
