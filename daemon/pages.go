package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
)

// The dashboard reads runs in parts (daemon/web.Source): a header, one window of steps,
// one step. None of them decodes a whole run, so a page of a run of 10,000 instances
// costs what the page shows.

// RunHead is run id's header: its steps counted, not read.
func (d *Daemon) RunHead(ctx context.Context, id string) (*history.Run, error) {
	r, err := d.cfg.Store.Head(id)
	return r, d.storeErr(id, err)
}

// RunPart is run id's header with the summary of its steps and at most limit of them from
// index offset on.
func (d *Daemon) RunPart(ctx context.Context, id string, offset, limit int) (*history.Run, error) {
	r, err := d.cfg.Store.RunPart(id, offset, limit)
	return r, d.storeErr(id, err)
}

// RunStep is one step instance of run id and its index (nil when the run has none).
func (d *Daemon) RunStep(ctx context.Context, id, instance string) (int, *history.Step, error) {
	i, st, err := d.cfg.Store.Step(id, instance)
	return i, st, d.storeErr(id, err)
}

// storeErr gives a store error the control API's meaning, as RunRecord does: a run
// triggered but not in the store yet is a conflict, one that is nowhere is not found.
func (d *Daemon) storeErr(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, history.ErrNotFound) && d.streams.get(id) != nil:
		return fmt.Errorf("%w: run %s has not started yet", control.ErrConflict, id)
	case errors.Is(err, history.ErrNotFound):
		return fmt.Errorf("%w: no run %q in history", control.ErrNotFound, id)
	}
	return fmt.Errorf("read run %q: %w", id, err)
}
