package executor

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/statedir"
)

// recorder owns a run's record (history.Run) and its persistence: the journal of every
// step change (statedir.Journal, for the recovery after a kill -9), the steps changed since
// the last save, and the saves to the store, made by one writer goroutine (persistLoop)
// that coalesces changes. Every goroutine of the run changes the record through it, and
// only through it; what it hands out (to the observer, the journal, the store) is a copy
// with free text masked.
//
// Locks: mu guards rec, changed, saved and journal; the observer hears a step's changes
// under it, so in order. saveMu serialises saves, so a later snapshot is never overwritten
// by an earlier one; a save takes saveMu before mu, never the other way round. dirty (one
// slot) wakes the writer. store, obs, red and log are set at the start and never change.
type recorder struct {
	store runStore
	obs   Observer // may be nil
	red   *redact.Redactor
	log   *slog.Logger

	saveMu sync.Mutex

	mu      sync.Mutex
	rec     *history.Run
	changed map[int]bool      // steps changed since the last save
	saved   int               // steps the store holds; later ones are new
	journal *statedir.Journal // nil before start, and once a write to it failed
	// unjournalled is set when the run has no journal (it could not be opened, or a write
	// to it failed): each step change is then saved to the store before update returns.
	unjournalled bool

	dirty         chan struct{}
	stop, stopped chan struct{}
}

// runStore is what a recorder saves a run to: the history store.
type runStore interface {
	SaveRun(r *history.Run) error
	SaveProgress(head *history.Run, steps map[int]history.Step) error
}

func newRecorder(store runStore, obs Observer, red *redact.Redactor, log *slog.Logger, rec *history.Run) *recorder {
	return &recorder{store: store, obs: obs, red: red, log: log, rec: rec, changed: map[int]bool{},
		dirty: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// begin saves the whole record, before anything runs: a crash from here on leaves a run
// the next start-up marks interrupted.
func (r *recorder) begin() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.store.SaveRun(r.rec); err != nil {
		return err
	}
	r.saved = len(r.rec.Steps)
	return nil
}

// start journals every step change into j from now on, and starts the writer. Without a
// journal (j nil) every step change is saved before update returns.
func (r *recorder) start(j *statedir.Journal) {
	r.mu.Lock()
	r.journal = j
	r.unjournalled = j == nil
	r.mu.Unlock()
	go r.persistLoop()
}

// finish stops the writer, ends the record with status and reason, closes the journal and
// saves the whole record. It returns the record as saved; the error is the store's.
func (r *recorder) finish(status history.Status, reason string) (*history.Run, error) {
	close(r.stop)
	<-r.stopped
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	r.rec.Status, r.rec.Reason, r.rec.End = status, r.red.String(reason), time.Now().UTC()
	final := r.snapshot()
	if r.journal != nil {
		r.journal.Close()
		r.journal = nil
	}
	r.mu.Unlock()
	return final, r.store.SaveRun(final)
}

// update changes step i, journals the change, tells the observer and schedules a save.
// When it returns, the change survives a kill -9: it is in the journal, or, in a run
// without one, in the store.
func (r *recorder) update(i int, f func(*history.Step)) {
	r.mu.Lock()
	s := &r.rec.Steps[i]
	f(s)
	r.changed[i] = true
	if r.journal != nil {
		if err := r.journal.Step(i, copyStep(s, r.red)); err != nil {
			r.log.Error("journal the step change; each step change now waits for the store", "step", s.Instance, "err", err)
			r.journal.Close()
			r.journal = nil
			r.unjournalled = true
		}
	}
	if r.obs != nil {
		r.obs.StepChanged(r.rec.ID, copyStep(s, r.red))
	}
	saveNow := r.unjournalled
	r.mu.Unlock()
	if saveNow {
		r.persist()
		return
	}
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// appendStep adds a step to the record and returns its index. It is saved with the next
// save; neither journalled nor told to the observer until it changes (update).
func (r *recorder) appendStep(s history.Step) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Steps = append(r.rec.Steps, s)
	return len(r.rec.Steps) - 1
}

// warn adds warnings to the run's record ("" ones left out).
func (r *recorder) warn(warnings ...string) {
	warnings = slices.DeleteFunc(warnings, func(w string) bool { return w == "" })
	if len(warnings) == 0 {
		return
	}
	r.mu.Lock()
	r.rec.Warnings = append(r.rec.Warnings, warnings...)
	r.mu.Unlock()
}

// maxFreshnessWhy bounds the recorded reason of one decision (a condition watches up to
// 1,000 tags, each of which may be named).
const maxFreshnessWhy = 2000

// addFreshness adds a skip_if decision to the record, its reason masked and bounded.
func (r *recorder) addFreshness(f history.Freshness) {
	f.Why = r.red.String(f.Why)
	if len(f.Why) > maxFreshnessWhy {
		f.Why = f.Why[:maxFreshnessWhy] + fmt.Sprintf("... (%d bytes more)", len(f.Why)-maxFreshnessWhy)
	}
	r.mu.Lock()
	r.rec.Freshness = append(r.rec.Freshness, f)
	r.mu.Unlock()
}

// addVars records the values a step defined at run time (already masked).
func (r *recorder) addVars(vars ...history.RunVar) {
	r.mu.Lock()
	r.rec.Vars = append(r.rec.Vars, vars...)
	r.mu.Unlock()
}

// setSource records what a checkout fetched as the run's source.
func (r *recorder) setSource(src history.Source) {
	r.mu.Lock()
	r.rec.Source = &src
	r.mu.Unlock()
}

// source is the run's checkout so far (a copy), or nil.
func (r *recorder) source() *history.Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rec.Source == nil {
		return nil
	}
	src := *r.rec.Source
	return &src
}

// setProcess records the process group the run started outside any step (skip_if's git)
// and saves the record before returning, so the recovery after a kill -9 finds it.
func (r *recorder) setProcess(g history.ProcessGroup) {
	r.mu.Lock()
	r.rec.Process = &g
	r.mu.Unlock()
	r.persist()
}

// cacheBefore is the digest ref had before this run as a step other than self recorded it
// (a cache build reads it from the registry ahead of the build); ok is false when none did.
func (r *recorder) cacheBefore(self, ref string) (digest string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.rec.Steps {
		if s.Instance == self {
			continue // an earlier attempt of this very step is no "before"
		}
		for _, c := range s.Caches {
			if c.Ref == ref {
				return c.Before, true
			}
		}
	}
	return "", false
}

// view calls f with the record, under the lock: f reads it, and neither keeps nor changes it.
func (r *recorder) view(f func(*history.Run)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.rec)
}

// saveEvery is the least time between two saves of the writer (persistLoop). What the
// saves are for is not a kill -9, which the journal covers as each change is made, but the
// readers of a running run (the daemon's pages, refreshd history) and a power loss, after
// which the store's last save is what remains: neither needs every change at once. Without
// the pause a run of short steps paid two store commits, each with its fdatasync, for
// every step; with it a run pays at most 1/saveEvery commits a second, however fast its
// steps go.
const saveEvery = 100 * time.Millisecond

// persistLoop saves the record when it changed: at once after a quiet spell, and at most
// once every saveEvery, the changes made meanwhile together in the next save. The store
// then lags the record by at most saveEvery and one save. It returns when finish stops it
// (finish saves the whole record).
func (r *recorder) persistLoop() {
	defer close(r.stopped)
	pause := time.NewTimer(saveEvery)
	defer pause.Stop()
	for {
		select {
		case <-r.dirty:
		case <-r.stop:
			return
		}
		r.persist()
		pause.Reset(saveEvery)
		select {
		case <-pause.C:
		case <-r.stop:
			return
		}
	}
}

// persist saves what changed since the last save: the run's header and the changed steps
// only, so a long run's saves cost the same at its end as at its start. Steps a failed save
// did not record stay marked, for the next save.
func (r *recorder) persist() {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	r.mu.Lock()
	head := r.header()
	steps := make(map[int]history.Step, len(r.changed))
	for i := range r.changed {
		steps[i] = *copyStep(&r.rec.Steps[i], r.red)
	}
	for i := r.saved; i < len(r.rec.Steps); i++ {
		steps[i] = *copyStep(&r.rec.Steps[i], r.red)
	}
	clear(r.changed)
	r.saved = len(r.rec.Steps)
	r.mu.Unlock()
	if err := r.store.SaveProgress(head, steps); err != nil {
		r.log.Error("record run progress", "err", err)
		r.mu.Lock()
		for i := range steps {
			r.changed[i] = true
		}
		r.mu.Unlock()
	}
}

// header is a copy of the record without its steps, free text masked. Caller holds mu.
func (r *recorder) header() *history.Run {
	h := *r.rec
	h.Steps = nil
	h.Vars = append([]history.RunVar(nil), r.rec.Vars...)
	h.Reason = r.red.String(h.Reason)
	h.Warnings = make([]string, len(r.rec.Warnings))
	for i, w := range r.rec.Warnings {
		h.Warnings[i] = r.red.String(w)
	}
	return &h
}

// snapshot is a deep copy of the record with every free-text field masked. Caller holds mu.
func (r *recorder) snapshot() *history.Run {
	c := copyRun(r.rec)
	c.Reason = r.red.String(c.Reason)
	for i, w := range c.Warnings {
		c.Warnings[i] = r.red.String(w)
	}
	for i := range c.Steps {
		c.Steps[i] = *copyStep(&c.Steps[i], r.red)
	}
	return c
}

func copyRun(r *history.Run) *history.Run {
	c := *r
	c.Warnings = append([]string(nil), r.Warnings...)
	if r.Source != nil {
		src := *r.Source
		c.Source = &src
	}
	c.Params = maps.Clone(r.Params)
	c.Vars = append([]history.RunVar(nil), r.Vars...)
	c.Steps = make([]history.Step, len(r.Steps))
	for i := range r.Steps {
		c.Steps[i] = *copyStep(&r.Steps[i], nil)
	}
	return &c
}

// copyStep deep-copies s, masking free text when red is not nil.
func copyStep(s *history.Step, red *redact.Redactor) *history.Step {
	c := *s
	c.Attempts = append([]history.Attempt(nil), s.Attempts...)
	c.Caches = append([]history.Cache(nil), s.Caches...)
	c.Warnings = append([]string(nil), s.Warnings...)
	if s.Publish != nil {
		p := *s.Publish
		p.Changes = append([]history.PackageChange(nil), s.Publish.Changes...)
		c.Publish = &p
	}
	if red != nil {
		c.Reason = red.String(c.Reason)
		c.After = red.String(c.After)
		for i := range c.Attempts {
			c.Attempts[i].Error = red.String(c.Attempts[i].Error)
		}
		for i := range c.Warnings {
			c.Warnings[i] = red.String(c.Warnings[i])
		}
		if c.Publish != nil {
			c.Publish.Repo = red.String(c.Publish.Repo)
			c.Publish.Summary = red.String(c.Publish.Summary)
		}
	}
	return &c
}
