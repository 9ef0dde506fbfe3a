package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/proc"
	"github.com/refreshd/refreshd/statedir"
)

// bootstrap is what run --local and the daemon both do before a step may run, in this
// order: hold the state directory (its lock, its store, then the recovery of what an
// earlier refreshd left running: its process groups stopped, its runs marked interrupted,
// its publishes reconciled with their branches, asking tokens for a plan's repository
// credentials), and reap orphans (every child starts through proc, and this process is a
// subreaper, so reaping never races an exec.Cmd). done stops the reaper and releases the
// state directory.
func bootstrap(ctx context.Context, log *slog.Logger, state string, tokens func(planName, repo string) string) (st *statedir.State, done func(), err error) {
	st, err = statedir.Open(ctx, state, statedir.Options{Log: log, Reconcile: executor.ReconcilePublish(tokens)})
	if err != nil {
		return nil, nil, err
	}
	reapCtx, stopReaping := context.WithCancel(ctx)
	go proc.ReapOrphans(reapCtx, log)
	return st, func() { stopReaping(); st.Close() }, nil
}

// engineConfig is the engine's configuration on st, as both run --local and the daemon
// build it from their flags; callers set the rest (an observer, a kill grace cap).
func engineConfig(st *statedir.State, log *slog.Logger, plainHTTP []string, grace time.Duration) executor.Config {
	return executor.Config{StateDir: st.Root, Store: st.Store, Logger: log, Tools: &executor.Tools{PlainHTTPRegistries: plainHTTP}, DefaultKillGrace: grace}
}
