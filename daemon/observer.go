package daemon

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/daemon/webhook"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// Observer receives the engine's events (it satisfies executor.Observer).
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
	d.cfg.Notify.Notify("STATUS=" + d.statusLine(context.Background()))
}

// StepChanged implements executor.Observer.
func (o *Observer) StepChanged(runID string, s *history.Step) {
	d := o.d
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
	d.streams.finish(r.ID)
	if d.metrics != nil {
		d.metrics.RunFinished(runEnd(r, ""), started)
		verified, missing := r.CacheTags()
		if verified+missing > 0 {
			d.metrics.CacheTags(r.Plan, verified, missing)
		}
	}
	d.cfg.Notify.Notify("STATUS=" + d.statusLine(context.Background()))

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
		// Every secret of the plan is masked in the payload, not only those in a URL: a
		// step's error quoted in the reason may hold any of them.
		values := secretValues(p.Secrets)
		for _, w := range p.Notify {
			targets = append(targets, webhook.Target{URL: resolveSecrets(w.URL, values), Format: w.Format, On: w.On, Secrets: mapValues(values)})
		}
		secrets = mapValues(values)
	}
	d.hooks.Send(d.hookCtx, targets, webhook.Event{
		Event: event, Plan: r.Plan, Run: r.ID, Status: string(r.Status), Previous: string(prev),
		Reason: r.Reason, Started: r.Start, Ended: r.End,
	}, secrets...)
}

var secretRef = regexp.MustCompile(`\{\{\s*\.secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// secretValues reads the plan's secrets now (they are never stored). A secret that cannot
// be read is left out: its reference then stays unresolved in the URL and the post fails
// visibly, without the value appearing anywhere.
func secretValues(secrets map[string]plan.Secret) map[string]string {
	out := make(map[string]string, len(secrets))
	for name, s := range secrets {
		var v string
		switch {
		case s.File != "":
			b, err := os.ReadFile(s.File)
			if err != nil {
				continue
			}
			v = strings.TrimRight(string(b), "\r\n")
		case s.Env != "":
			v = os.Getenv(s.Env)
		}
		if v != "" {
			out[name] = v
		}
	}
	return out
}

// resolveSecrets fills {{ .secrets.NAME }} in a webhook URL.
func resolveSecrets(raw string, values map[string]string) string {
	return secretRef.ReplaceAllStringFunc(raw, func(m string) string {
		if v, ok := values[secretRef.FindStringSubmatch(m)[1]]; ok {
			return v
		}
		return m
	})
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// streams keeps the live output of started runs for `logs -f` and `run --wait`: the latest
// lines (at most max per run) and the followers waiting for more. Followers address lines by
// their absolute number in the run, so one that falls behind the buffer learns how many it
// missed rather than waiting on a position the buffer never reaches again.
type streams struct {
	max  int // lines kept per run
	mu   sync.Mutex
	runs map[string]*stream
}

type stream struct {
	lines   []streamLine
	dropped int // lines dropped from the front; lines[0] is line number dropped
	done    bool
	wake    chan struct{} // closed and replaced on each new line or at the end
}

type streamLine struct{ instance, text string }

// defaultMaxBuffered bounds memory per run. The whole output is in the attempt log files,
// which `refreshd logs RUN` reads once the run has ended.
const defaultMaxBuffered = 20000

func newStreams(max int) *streams {
	if max <= 0 {
		max = defaultMaxBuffered
	}
	return &streams{max: max, runs: map[string]*stream{}}
}

func (s *streams) open(id string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.runs[id]
	if st == nil {
		st = &stream{wake: make(chan struct{})}
		s.runs[id] = st
	}
	return st
}

func (s *streams) get(id string) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

func (s *streams) line(id, instance, text string) {
	st := s.open(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(st.lines) >= s.max {
		// Zero the dropped entry so its strings can be collected before append reallocates.
		st.lines[0] = streamLine{}
		st.lines = st.lines[1:]
		st.dropped++
	}
	st.lines = append(st.lines, streamLine{instance, text})
	close(st.wake)
	st.wake = make(chan struct{})
}

// finish marks a run's stream ended; it is forgotten a minute later, when every follower
// has had time to read the end.
func (s *streams) finish(id string) {
	st := s.open(id)
	s.mu.Lock()
	if !st.done {
		st.done = true
		close(st.wake)
		st.wake = make(chan struct{})
	}
	s.mu.Unlock()
	time.AfterFunc(time.Minute, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.runs[id] == st {
			delete(s.runs, id)
		}
	})
}

// chunk is what one read of a stream returns.
type chunk struct {
	lines   []streamLine
	skipped int  // lines before the first returned one that are no longer buffered
	next    int  // absolute line number to read from next
	done    bool // the run has ended and every line up to next has been returned
	more    <-chan struct{}
}

// read returns the lines from absolute line number from on, how many of the lines asked for
// were already dropped from the buffer, whether the stream has ended, and a channel closed
// when there is more.
func (s *streams) read(st *stream, from int) chunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := chunk{done: st.done, more: st.wake}
	if from < st.dropped {
		c.skipped = st.dropped - from
		from = st.dropped
	}
	i := min(from-st.dropped, len(st.lines))
	c.lines = append([]streamLine(nil), st.lines[i:]...)
	c.next = st.dropped + len(st.lines)
	return c
}
