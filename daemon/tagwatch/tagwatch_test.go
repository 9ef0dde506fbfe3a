package tagwatch

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// registry is a lookup over digests the test sets, counting lookups in flight.
type registry struct {
	mu       sync.Mutex
	digests  map[string]string // absent: no such tag
	failing  map[string]error
	looked   []string
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	delay    time.Duration
}

func (r *registry) lookup(ctx context.Context, ref string) (string, bool, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		m := r.maxSeen.Load()
		if n <= m || r.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.looked = append(r.looked, ref)
	if err := r.failing[ref]; err != nil {
		return "", false, err
	}
	d, ok := r.digests[ref]
	return d, ok, nil
}

// forgetCounter is a store counting its ForgetTags calls, each a write.
type forgetCounter struct {
	*history.Store
	calls int
}

func (f *forgetCounter) ForgetTags(before time.Time) (int, error) {
	f.calls++
	return f.Store.ForgetTags(before)
}

func openStore(t *testing.T) *history.Store {
	t.Helper()
	s, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLookDatesPushes: a pass looks at every tag a run asked for within Keep, and at no
// other; a new digest is dated at the pass that saw it; a tag gone from the registry is
// recorded absent; a failing lookup does not keep the others from being looked at.
func TestLookDatesPushes(t *testing.T) {
	st := openStore(t)
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	const (
		fresh   = "127.0.0.1:5000/ci/python3.12:cache-linux-amd64"
		gone    = "127.0.0.1:5000/ci/python3.11:cache-linux-amd64"
		broken  = "127.0.0.1:5000/ci/python3.13:cache-linux-amd64"
		dropped = "127.0.0.1:5000/ci/python3.9:cache-linux-amd64"
	)
	// Runs asked for these at t0, and for dropped 20 days before.
	asked := map[string]time.Time{fresh: t0, gone: t0, broken: t0, dropped: t0.Add(-20 * 24 * time.Hour)}
	for ref, at := range asked {
		if _, err := st.ObserveTag(ref, "sha256:old", at); err != nil {
			t.Fatal(err)
		}
	}
	reg := &registry{
		digests: map[string]string{fresh: "sha256:new", broken: "sha256:old", dropped: "sha256:new"},
		failing: map[string]error{broken: errors.New("connection refused")},
	}
	var logs testkit.Buffer
	now := t0.Add(15 * time.Minute)
	counted := &forgetCounter{Store: st}
	w := &Watcher{Store: counted, Lookup: reg.lookup, Keep: 14 * 24 * time.Hour, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	p := w.Look(t.Context())
	if p != (Pass{Looked: 3, Changed: 2, Failed: 1}) {
		t.Errorf("pass %+v; want 3 looked (not the tag no run asked for in 20 days), 2 changed, 1 failed", p)
	}
	tags, err := st.Tags()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ref          string
		digest       string
		changedAfter time.Time
		changedBy    time.Time
	}{
		{fresh, "sha256:new", t0, now},
		{gone, "", t0, now},
		{broken, "sha256:old", time.Time{}, time.Time{}},
		{dropped, "sha256:old", time.Time{}, time.Time{}},
	} {
		got := tags[tt.ref]
		if got.Digest != tt.digest || !got.ChangedAfter.Equal(tt.changedAfter) || !got.ChangedBy.Equal(tt.changedBy) {
			t.Errorf("%s: %+v; want digest %q changed after %s by %s", tt.ref, got, tt.digest, tt.changedAfter, tt.changedBy)
		}
		if !got.Asked.Equal(asked[tt.ref]) {
			t.Errorf("%s: asked %s; a periodic look must not count as a run asking", tt.ref, got.Asked)
		}
	}
	if !strings.Contains(logs.String(), "cannot look at a watched tag") || !strings.Contains(logs.String(), "watched tag changed") {
		t.Errorf("log:\n%s", logs.String())
	}
	if counted.calls != 0 {
		t.Errorf("%d deletions with nothing to forget; a pass writes only to forget", counted.calls)
	}
	// 100 days later no run asked for any of them: their records go.
	now = t0.Add(100 * 24 * time.Hour)
	w.Look(t.Context())
	if left, err := st.Tags(); err != nil || len(left) != 0 || counted.calls != 1 {
		t.Errorf("100 days after the last run asked: %d tags kept (%v), %d deletions; want none kept, one deletion", len(left), err, counted.calls)
	}
}

// TestLookBounded: lookups run at most Parallel at once, however many tags there are.
func TestLookBounded(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	reg := &registry{digests: map[string]string{}, delay: 5 * time.Millisecond}
	for i := range 40 {
		ref := "127.0.0.1:5000/ci/t:" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		reg.digests[ref] = "sha256:1"
		if _, err := st.ObserveTag(ref, "sha256:1", now); err != nil {
			t.Fatal(err)
		}
	}
	w := &Watcher{Store: st, Lookup: reg.lookup, Parallel: 3, Log: slog.New(slog.DiscardHandler)}
	if p := w.Look(t.Context()); p.Looked != 40 || p.Changed != 0 {
		t.Errorf("pass %+v; want 40 looked, none changed", p)
	}
	if m := reg.maxSeen.Load(); m > 3 || m < 2 {
		t.Errorf("%d lookups at once; want at most 3 (and more than 1)", m)
	}
}

// TestRunLogsAFailingTagOnce: a registry down for many passes is logged when the lookups
// start failing and when they work again, not at every pass; Run ends with its context.
func TestRunLogsAFailingTagOnce(t *testing.T) {
	st := openStore(t)
	const ref = "127.0.0.1:5000/ci/python3.12:cache-linux-amd64"
	if _, err := st.ObserveTag(ref, "sha256:1", time.Now()); err != nil {
		t.Fatal(err)
	}
	reg := &registry{digests: map[string]string{ref: "sha256:1"}, failing: map[string]error{ref: errors.New("connection refused")}}
	var logs testkit.Buffer
	w := &Watcher{Store: st, Lookup: reg.lookup, Every: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	passes := func() int { reg.mu.Lock(); defer reg.mu.Unlock(); return len(reg.looked) }
	testkit.WaitFor(t, "five failing passes", 5*time.Second, func() bool { return passes() >= 5 })
	reg.mu.Lock()
	delete(reg.failing, ref)
	reg.mu.Unlock()
	n := passes()
	testkit.WaitFor(t, "a pass that works", 5*time.Second, func() bool { return passes() > n+1 })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
	if c := strings.Count(logs.String(), "cannot look at a watched tag"); c != 1 {
		t.Errorf("the failure logged %d times over %d passes; want once:\n%s", c, passes(), logs.String())
	}
	if !strings.Contains(logs.String(), "can be looked at again") {
		t.Errorf("the recovery is not logged:\n%s", logs.String())
	}
}
