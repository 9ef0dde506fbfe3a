package main

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/refreshd/refreshd/executor/git"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/proc"
)

// listTimeout bounds one listing of a remote's branches (instances_from).
const listTimeout = 30 * time.Second

// remoteBranches lists the branches of the repositories plans derive instances from
// (plan.BranchLister), remembering each repository's last good listing: a listing that
// fails keeps it, and the plan says why. The memory lives as long as the process (a
// daemon keeps it across reloads; a restart lists afresh).
type remoteBranches struct {
	ctx   context.Context
	procs *proc.Runner
	mu    sync.Mutex
	last  map[string]plan.BranchListing
}

func newRemoteBranches(ctx context.Context, log *slog.Logger) *remoteBranches {
	return &remoteBranches{ctx: ctx, procs: &proc.Runner{Log: log}, last: map[string]plan.BranchListing{}}
}

// List is the plan.BranchLister.
func (r *remoteBranches) List(repo string) plan.BranchListing {
	ctx, cancel := context.WithTimeout(r.ctx, listTimeout)
	defer cancel()
	names, err := git.ListBranches(ctx, r.procs, repo, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		prev, ok := r.last[repo]
		if !ok {
			return plan.BranchListing{Err: err}
		}
		return plan.BranchListing{Names: prev.Names, ListedAt: prev.ListedAt, Err: err}
	}
	if names == nil {
		names = []string{}
	}
	got := plan.BranchListing{Names: names, ListedAt: time.Now()}
	r.last[repo] = got
	return got
}

// watch lists every repository listed so far again each interval, and calls reload once
// when the branches of one changed (a release branch was cut): the daemon's own look,
// between reloads.
func (r *remoteBranches) watch(ctx context.Context, interval time.Duration, log *slog.Logger, reload func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		before := maps.Clone(r.last)
		r.mu.Unlock()
		changed := false
		for _, repo := range slices.Sorted(maps.Keys(before)) {
			got := r.List(repo)
			if got.Err != nil {
				log.Warn("instances_from: listing the branches failed; keeping the last known", "repo", git.RedactURLs(repo), "err", got.Err)
				continue
			}
			if !slices.Equal(got.Names, before[repo].Names) {
				log.Info("instances_from: the remote's branches changed; reloading the plans", "repo", git.RedactURLs(repo))
				changed = true
			}
		}
		if changed {
			if err := reload(ctx); err != nil {
				log.Error("reload after the remote's branches changed", "err", err)
			}
		}
	}
}
