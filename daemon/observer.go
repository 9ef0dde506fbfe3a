package daemon

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/daemon/metrics"
	"github.com/refreshd/refreshd/daemon/web"
	"github.com/refreshd/refreshd/daemon/webhook"
	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// Observer receives the engine's events (it satisfies executor.Observer) and the runner's
// (a run that failed to start, a dropped trigger). It reads and writes only the
// daemon's own state, under d.mu, and never waits on the scheduler, so the scheduler's
// goroutine may call it too.
type Observer struct{ d *Daemon }

// RunStarted implements executor.Observer.
func (o *Observer) RunStarted(r *history.Run) {
	d := o.d
	d.mu.Lock()
	d.running[r.ID] = r.Plan
	d.mu.Unlock()
	d.streams.open(r.ID)
	if d.metrics != nil {
		d.metrics.RunStarted(r.Plan)
	}
	d.notifyStatus("")
	d.pagesChanged(web.RunStarted, r.Plan, r.ID)
}

// StepChanged implements executor.Observer.
func (o *Observer) StepChanged(runID string, s *history.Step) {
	d := o.d
	d.pagesChanged(web.StepChanged, "", runID)
	if d.metrics == nil || s.Start.IsZero() || s.End.IsZero() {
		return
	}
	switch s.Status {
	case history.StatusSucceeded, history.StatusFailed, history.StatusInterrupted:
		d.mu.Lock()
		plan := d.running[runID]
		d.mu.Unlock()
		if plan != "" {
			d.metrics.StepFinished(plan, s.Instance, s.End.Sub(s.Start))
		}
	}
}

// NodeDown implements executor.Observer: a pool node a run found down.
func (o *Observer) NodeDown(_ string, d history.NodeDown) {
	if o.d.metrics == nil {
		return
	}
	o.d.metrics.PoolNodeDown(metrics.PoolNode{Builder: d.Builder, Node: d.Node, Platform: d.Platform}, d.Found)
}

// Line implements executor.Observer: one line of live output.
func (o *Observer) Line(runID, instance, line string) {
	o.d.streams.line(runID, instance, line)
}

// RunFinished implements executor.Observer.
func (o *Observer) RunFinished(r *history.Run) {
	d := o.d
	d.mu.Lock()
	_, started := d.running[r.ID]
	delete(d.running, r.ID)
	prev := d.lastStatus[r.Plan]
	if r.Status == history.StatusSucceeded || r.Status == history.StatusFailed {
		d.lastStatus[r.Plan] = r.Status
	}
	p := d.plans[r.Plan]
	d.mu.Unlock()
	// The live stream ends when the scheduler releases the run (runner.Released), after this.
	d.pagesChanged(web.RunFinished, r.Plan, r.ID)
	if d.metrics != nil {
		d.metrics.RunFinished(runEnd(r, ""), started)
		verified, missing := r.CacheTags()
		if verified+missing > 0 {
			d.metrics.CacheTags(r.Plan, verified, missing)
		}
	}
	d.notifyStatus("")

	event := ""
	switch {
	case r.Status == history.StatusFailed:
		event = webhook.OnFailure
	case r.Status == history.StatusSucceeded && prev == history.StatusFailed:
		event = webhook.OnRecovery
	case r.Status == history.StatusSucceeded:
		event = webhook.OnSuccess
	}
	if event == "" {
		return
	}
	targets := append([]webhook.Target(nil), d.cfg.Webhooks...)
	var secrets []string
	if p != nil {
		targets, secrets = d.planTargets(p, targets)
	}
	ev := webhook.Event{
		Event: event, Plan: r.Plan, Run: r.ID, Status: string(r.Status), Previous: string(prev),
		Reason: r.Reason, Started: r.Start, Ended: r.End,
	}
	if d.cfg.HTTPURL != "" {
		ev.URL = strings.TrimSuffix(d.cfg.HTTPURL, "/") + "/runs/" + url.PathEscape(r.ID)
	}
	for _, s := range r.Steps {
		if p := s.Publish; p != nil && p.Changed && p.Commit != "" {
			ev.Constraints = append(ev.Constraints, webhook.NewPublished(p))
		}
	}
	d.hooks.Send(d.hookCtx, targets, ev, secrets...)
}

// pagesChanged tells the dashboard's pages (when it serves them) that a run changed; it
// never waits on them.
func (d *Daemon) pagesChanged(kind, plan, run string) {
	if d.web != nil {
		d.web.RunChanged(web.RunEvent{Kind: kind, Plan: plan, Run: run})
	}
}

// planTargets adds the plan's own webhooks to targets, their URLs rendered by the plan's
// template engine from the plan's secrets, read now (they are never stored). It returns
// every secret value it read: all of them are masked in the payload, not only those in a
// URL, since a step's error quoted in the reason may hold any of them. A webhook whose URL
// cannot be rendered (its secret has no value) is not sent, and the log says why, naming
// the secret, never a value.
func (d *Daemon) planTargets(p *plan.Plan, targets []webhook.Target) ([]webhook.Target, []string) {
	values, warnings, err := executor.ReadSecrets(context.Background(), p)
	for _, w := range warnings {
		d.log.Warn("plan secret file", "plan", p.Name, "warning", w)
	}
	if err != nil {
		d.log.Warn("plan secrets unreadable for notifications", "plan", p.Name, "err", err)
	}
	secrets := slices.Collect(maps.Values(values))
	for _, w := range p.Notify {
		url, err := w.RenderURL(values)
		if err != nil {
			d.log.Error("plan webhook not sent", "plan", p.Name, "err", err)
			continue
		}
		targets = append(targets, webhook.Target{URL: url, Format: w.Format, On: w.On, Secrets: secrets})
	}
	return targets, secrets
}
