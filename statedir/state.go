package statedir

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/refreshd/refreshd/history"
)

// Options say how to open a state directory.
type Options struct {
	Log *slog.Logger // default discards
	// Reconcile tells whether the commit an interrupted publish of plan handed to git push
	// (p.Pushing) is on its branch (executor.ReconcilePublish). nil leaves such publishes
	// as recorded.
	Reconcile func(ctx context.Context, stateDir, plan string, p history.Publish) (onBranch bool, err error)
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// State is an open state directory: its lock held, its store open, what an earlier
// refreshd left behind recovered.
type State struct {
	Dir
	Store *history.Store
	// Interrupted lists the runs an earlier refreshd left running, now marked interrupted.
	Interrupted []string
	unlock      func()
}

// Open is what the daemon and run --local do before they run anything: lock the state
// directory at root (refusing with the holder's pid), open its run store, and, holding the
// lock so nothing else runs here, recover (Dir.Recover). Close releases both.
func Open(ctx context.Context, root string, o Options) (*State, error) {
	o.defaults()
	d, err := New(root)
	if err != nil {
		return nil, err
	}
	unlock, err := d.Lock()
	if err != nil {
		return nil, err
	}
	store, err := history.Open(d.History(), history.WithLogger(o.Log))
	if err != nil {
		unlock()
		return nil, err
	}
	ids, err := d.Recover(ctx, store, o)
	if err != nil {
		store.Close()
		unlock()
		return nil, fmt.Errorf("recover runs left running: %w", err)
	}
	for _, id := range ids {
		o.Log.Warn("run left running by an earlier refreshd marked interrupted", "run", id)
	}
	return &State{Dir: d, Store: store, Interrupted: ids, unlock: unlock}, nil
}

// Close closes the store and releases the lock.
func (s *State) Close() error {
	err := s.Store.Close()
	s.unlock()
	return err
}
