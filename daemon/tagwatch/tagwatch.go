// Package tagwatch looks at the registry tags refreshd watches on a timer, between runs.
//
// A registry keeps no push time and a BuildKit cache manifest no created time, so refreshd
// dates a push by the first look that sees the tag's new digest (history.Tag). A plan that
// looks once a night would date a push made just after its last run to the next night, and
// a skip_if "pushed within 12h" would then hold for a push 23 hours old. Looking every few
// minutes dates each push to within that interval of when it happened.
package tagwatch

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
)

// Store is the store of watched tags (history.Store).
type Store interface {
	Tags() (map[string]history.Tag, error)
	LookTag(ref, digest string, at time.Time) (history.Tag, error)
	ForgetTags(before time.Time) (int, error)
}

// Lookup reads the digest a tag has now in its registry; found is false when the tag does
// not exist.
type Lookup func(ctx context.Context, ref string) (digest string, found bool, err error)

// Defaults of a Watcher.
const (
	DefaultEvery = 15 * time.Minute
	DefaultKeep  = 14 * 24 * time.Hour
	// DefaultForget is how long the record of a tag no run asks for any more is kept (a
	// Python version dropped from the tree): long enough to read in the history, not for
	// ever on a box that runs for years.
	DefaultForget   = 90 * 24 * time.Hour
	DefaultParallel = 4
	// MaxTags bounds the tags of one pass, the most recently asked for first: a pass costs
	// one HEAD request per tag.
	MaxTags = 2000
)

// Watcher looks at every tag a run asked for within Keep, every Every.
type Watcher struct {
	Store    Store
	Lookup   Lookup
	Every    time.Duration // 0: DefaultEvery
	Keep     time.Duration // 0: DefaultKeep
	Forget   time.Duration // 0: DefaultForget
	Parallel int           // lookups at once; 0: DefaultParallel
	Log      *slog.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Pass is what one pass did.
type Pass struct {
	Looked, Changed, Failed int
}

// Run looks at the tags every w.Every until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	every := w.Every
	if every <= 0 {
		every = DefaultEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := w.look(ctx, failing)
		if p.Looked > 0 {
			w.log().Debug("watched tags looked at", "tags", p.Looked, "changed", p.Changed, "failed", p.Failed)
		}
	}
}

// Look does one pass: each tag a run asked for within Keep (at most MaxTags, the most
// recently asked first) is read from its registry and recorded with LookTag.
func (w *Watcher) Look(ctx context.Context) Pass {
	return w.look(ctx, map[string]bool{})
}

// look is Look remembering, across passes, which refs failed: a lookup that keeps failing
// (a registry down for hours) is logged when it starts and when it ends, not every pass.
func (w *Watcher) look(ctx context.Context, failing map[string]bool) Pass {
	log := w.log()
	tags, err := w.Store.Tags()
	if err != nil {
		log.Error("read the watched tags", "err", err)
		return Pass{}
	}
	now := w.now()
	keep, forget := cmp.Or(w.Keep, DefaultKeep), cmp.Or(w.Forget, DefaultForget)
	var refs []history.Tag
	stale := false
	for _, t := range tags {
		switch age := now.Sub(t.LastAsked()); {
		case age <= keep:
			refs = append(refs, t)
		case age > forget:
			stale = true
		}
	}
	// Deleting writes the store: only when there is something to forget, not every pass.
	if stale {
		if n, err := w.Store.ForgetTags(now.Add(-forget)); err != nil {
			log.Error("forget the tags no run asks for any more", "err", err)
		} else {
			log.Info("forgot watched tags no run asked for", "tags", n, "for", forget.String())
		}
	}
	slices.SortFunc(refs, func(a, b history.Tag) int { return b.LastAsked().Compare(a.LastAsked()) })
	if len(refs) > MaxTags {
		log.Warn("more watched tags than one pass looks at; the least recently asked wait", "tags", len(refs), "max", MaxTags)
		refs = refs[:MaxTags]
	}
	parallel := cmp.Or(w.Parallel, DefaultParallel)
	var (
		mu   sync.Mutex
		pass Pass
		wg   sync.WaitGroup
		sem  = make(chan struct{}, parallel)
	)
	for _, t := range refs {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			changed, err := w.lookOne(ctx, t)
			if ctx.Err() != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			pass.Looked++
			switch {
			case err != nil:
				pass.Failed++
				if !failing[t.Ref] {
					failing[t.Ref] = true
					log.Warn("cannot look at a watched tag; its pushes are dated by the next look that can", "ref", t.Ref, "err", err)
				}
			default:
				if failing[t.Ref] {
					delete(failing, t.Ref)
					log.Info("a watched tag can be looked at again", "ref", t.Ref)
				}
				if changed {
					pass.Changed++
				}
			}
		}()
	}
	wg.Wait()
	return pass
}

// lookOne reads one tag's digest and records it; changed says the digest differs from the
// one recorded.
func (w *Watcher) lookOne(ctx context.Context, old history.Tag) (changed bool, err error) {
	digest, found, err := w.Lookup(ctx, old.Ref)
	if err != nil {
		return false, err
	}
	if !found {
		digest = ""
	}
	tag, err := w.Store.LookTag(old.Ref, digest, w.now())
	if err != nil {
		return false, err
	}
	if tag.Digest != old.Digest {
		w.log().Info("watched tag changed", "ref", old.Ref, "digest", tag.Digest, "previous", old.Digest,
			"pushed_after", tag.ChangedAfter.Format(time.RFC3339), "seen", tag.ChangedBy.Format(time.RFC3339))
		return true, nil
	}
	return false, nil
}

func (w *Watcher) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Watcher) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}
