package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
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
		return control.Errorf(control.ErrConflict, "run %s has not started yet", id)
	case errors.Is(err, history.ErrNotFound):
		return control.Errorf(control.ErrNotFound, "no run %q in history", id)
	}
	return fmt.Errorf("read run %q: %w", id, err)
}

// maxCacheRows bounds the watched tags one answer lists.
const maxCacheRows = 5000

// Caches implements control.Service: the watched tags, with their plan's freshness window
// and whether they are older than it.
func (d *Daemon) Caches(ctx context.Context) ([]control.CacheTag, error) {
	tags, err := d.cfg.Store.Tags()
	if err != nil {
		return nil, fmt.Errorf("read watched tags: %w", err)
	}
	now := time.Now()
	d.mu.Lock()
	within := map[string]time.Duration{}
	for name, p := range d.plans {
		if w := tagsWindow(p); w > 0 {
			within[name] = w
		}
	}
	d.mu.Unlock()
	out := make([]control.CacheTag, 0, min(len(tags), maxCacheRows))
	for _, t := range tags {
		c := control.CacheTag{Ref: t.Ref, Plan: t.Plan, Digest: t.Digest, Checked: t.Checked, Changed: t.ChangedBy, PushedBy: t.PushedBy}
		if w := within[t.Plan]; w > 0 {
			c.Within = plan.ShortDuration(w)
			c.Stale = t.ChangedBy.IsZero() || now.Sub(t.ChangedBy) > w
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b control.CacheTag) int { return cmp.Or(cmp.Compare(a.Plan, b.Plan), cmp.Compare(a.Ref, b.Ref)) })
	if len(out) > maxCacheRows {
		out = out[:maxCacheRows]
	}
	return out, nil
}

// tagsWindow is plan p's freshness window for its cache tags: the shortest within of its
// skip_if tags conditions, the plan's and its steps'; 0 when it has none.
func tagsWindow(p *plan.Plan) time.Duration {
	var w time.Duration
	conds := slices.Clone(p.SkipIf)
	for _, s := range p.Steps {
		conds = append(conds, s.SkipIf...)
	}
	for _, c := range conds {
		if c.Tags != nil && (w == 0 || c.Tags.Within < w) {
			w = c.Tags.Within
		}
	}
	return w
}

// StepTimeouts implements web.Source: the attempt timeout of each step of plan name (the
// plan's run timeout for a step without its own), for the dashboard's trend charts.
func (d *Daemon) StepTimeouts(ctx context.Context, name string) (map[string]time.Duration, error) {
	d.mu.Lock()
	p := d.plans[name]
	d.mu.Unlock()
	out := map[string]time.Duration{}
	if p == nil {
		return out, nil
	}
	for _, s := range p.Steps {
		if t := cmp.Or(s.Timeout, p.Timeout); t > 0 {
			out[s.ID] = t
		}
	}
	return out, nil
}
