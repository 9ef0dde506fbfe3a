package daemon

import (
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
)

// GET /v1/caches (and the dashboard's caches page): every watched tag with its plan's
// freshness window, the shortest of its skip_if tags conditions, plan-level or a step's,
// and whether it is older than that; a tag of a plan without a window is never stale.
func TestCaches(t *testing.T) {
	dir := t.TempDir()
	windowed := parsePlan(t, dir, "windowed", `plan: windowed
skip_if:
  - tags: { refs: ["127.0.0.1:5000/w/ci:cache-a"], within: 12h }
steps:
  - id: build
    skip_if:
      - tags: { refs: ["127.0.0.1:5000/w/ci:cache-b"], within: 90m }
    run: ["true"]
`)
	plain := parsePlan(t, dir, "plain", "plan: plain\nsteps:\n  - id: s\n    run: [\"true\"]\n")
	td := startDaemon(t, dir, Config{Load: plansOf(windowed, plain)})
	now := time.Now()
	for _, o := range []struct {
		ref, plan string
		changed   time.Duration // ago; 0: seen once only
	}{
		{"127.0.0.1:5000/w/ci:cache-fresh", "windowed", time.Hour},
		{"127.0.0.1:5000/w/ci:cache-old", "windowed", 3 * time.Hour},
		{"127.0.0.1:5000/w/ci:cache-undated", "windowed", 0},
		{"127.0.0.1:5000/p/ci:cache-old", "plain", 300 * time.Hour},
	} {
		by := history.Sighting{Plan: o.plan, Run: o.plan + "-1"}
		if o.changed > 0 {
			if _, err := td.store.ObserveTagBy(o.ref, "sha256:1", now.Add(-o.changed-time.Minute), by); err != nil {
				t.Fatal(err)
			}
			if _, err := td.store.ObserveTagBy(o.ref, "sha256:2", now.Add(-o.changed), by); err != nil {
				t.Fatal(err)
			}
		} else if _, err := td.store.ObserveTagBy(o.ref, "sha256:1", now, by); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := td.Caches(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		within string
		stale  bool
	}{
		"127.0.0.1:5000/p/ci:cache-old":     {"", false},
		"127.0.0.1:5000/w/ci:cache-fresh":   {"1h30m", false},
		"127.0.0.1:5000/w/ci:cache-old":     {"1h30m", true},
		"127.0.0.1:5000/w/ci:cache-undated": {"1h30m", true},
	}
	if len(tags) != len(want) {
		t.Fatalf("%d tags, want %d: %+v", len(tags), len(want), tags)
	}
	for i, tag := range tags {
		w := want[tag.Ref]
		if tag.Within != w.within || tag.Stale != w.stale {
			t.Errorf("%s: within %q stale %v, want %q %v", tag.Ref, tag.Within, tag.Stale, w.within, w.stale)
		}
		if i > 0 && tags[i-1].Plan > tag.Plan {
			t.Errorf("tags not sorted by plan: %s before %s", tags[i-1].Plan, tag.Plan)
		}
	}
}
