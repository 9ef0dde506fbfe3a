package history

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestObserveTag(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	const ref = "127.0.0.1:5000/ci/python3.12:cache-linux-amd64"
	steps := []struct {
		at           time.Time
		periodic     bool // the daemon's look (LookTag), not a run's (ObserveTag)
		digest       string
		changedAfter time.Time
		changedBy    time.Time
		asked        time.Time
	}{
		{at: t0, digest: "sha256:a", asked: t0},                                                   // first look: no change known
		{at: t0.Add(time.Hour), digest: "sha256:a", asked: t0.Add(time.Hour)},                     // same digest
		{at: t0.Add(2 * time.Hour), periodic: true, digest: "sha256:a", asked: t0.Add(time.Hour)}, // the daemon's look moves Checked, not Asked
		{at: t0.Add(3 * time.Hour), periodic: true, digest: "sha256:b", changedAfter: t0.Add(2 * time.Hour), changedBy: t0.Add(3 * time.Hour), asked: t0.Add(time.Hour)}, // pushed in between
		{at: t0.Add(4 * time.Hour), digest: "sha256:b", changedAfter: t0.Add(2 * time.Hour), changedBy: t0.Add(3 * time.Hour), asked: t0.Add(4 * time.Hour)},
		{at: t0.Add(5 * time.Hour), digest: "", changedAfter: t0.Add(4 * time.Hour), changedBy: t0.Add(5 * time.Hour), asked: t0.Add(5 * time.Hour)}, // deleted
		{at: t0.Add(2 * time.Hour), digest: "", changedAfter: t0.Add(4 * time.Hour), changedBy: t0.Add(5 * time.Hour), asked: t0.Add(5 * time.Hour)}, // an older look never moves Checked back
	}
	for i, st := range steps {
		look := s.ObserveTag
		if st.periodic {
			look = s.LookTag
		}
		tag, err := look(ref, st.digest, st.at)
		if err != nil {
			t.Fatal(err)
		}
		if tag.Digest != st.digest || !tag.ChangedAfter.Equal(st.changedAfter) || !tag.ChangedBy.Equal(st.changedBy) || !tag.LastAsked().Equal(st.asked) {
			t.Errorf("look %d: %+v; want digest %q changed after %s by %s, asked %s", i, tag, st.digest, st.changedAfter, st.changedBy, st.asked)
		}
	}
	all, err := s.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if got := all[ref]; got.Digest != "" || !got.Checked.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("Tags()[%s] = %+v", ref, got)
	}
}

// A run's sighting keeps its plan; a digest the run pushed names the run, a digest seen
// changed by anyone else (a look, another run's check) names nobody: outside refreshd.
func TestTagPushedBy(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	const ref = "127.0.0.1:5000/ci/python3.12:cache-linux-amd64"
	steps := []struct {
		look     string // run (ObserveTagBy), push (ObserveTagBy, pushed), daemon (LookTag)
		digest   string
		plan     string
		pushedBy string
	}{
		{"push", "sha256:a", "demo/main", "r1"}, // first seen as r1's own push
		{"run", "sha256:a", "demo/v1", "r1"},    // another plan's check: same digest, same pusher
		{"daemon", "sha256:b", "demo/v1", ""},   // changed between looks: outside refreshd
		{"push", "sha256:b", "demo/main", ""},   // a push that changed nothing is not the pusher
		{"push", "sha256:c", "demo/main", "r5"}, // a push that changed it is
		{"run", "sha256:c", "demo/main", "r5"},  // verify after it
	}
	for i, st := range steps {
		at := t0.Add(time.Duration(i) * time.Hour)
		run := fmt.Sprintf("r%d", i+1)
		var tag Tag
		var err error
		switch st.look {
		case "daemon":
			tag, err = s.LookTag(ref, st.digest, at)
		default:
			tag, err = s.ObserveTagBy(ref, st.digest, at, Sighting{Plan: st.plan, Run: run, Pushed: st.look == "push"})
		}
		if err != nil {
			t.Fatal(err)
		}
		if tag.Plan != st.plan || tag.PushedBy != st.pushedBy {
			t.Errorf("look %d (%s %s): plan %q pushed by %q; want %q, %q", i, st.look, st.digest, tag.Plan, tag.PushedBy, st.plan, st.pushedBy)
		}
	}
}

// TestForgetTags: the records of tags no run asked for since the cut-off are deleted, a
// periodic look does not keep one alive, and the others stay.
func TestForgetTags(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	const kept, dropped = "r/ci/python3.12:cache-linux-amd64", "r/ci/python3.8:cache-linux-amd64"
	if _, err := s.ObserveTag(kept, "sha256:a", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ObserveTag(dropped, "sha256:b", t0.Add(-100*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookTag(dropped, "sha256:b", t0); err != nil { // the daemon still looked
		t.Fatal(err)
	}
	n, err := s.ForgetTags(t0.Add(-90 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("ForgetTags = %d, %v; want 1 forgotten", n, err)
	}
	all, err := s.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := all[dropped]; ok || all[kept].Digest != "sha256:a" {
		t.Errorf("after forgetting: %v", all)
	}
}
