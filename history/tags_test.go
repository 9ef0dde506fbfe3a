package history

import (
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
		digest       string
		changedAfter time.Time
		changedBy    time.Time
	}{
		{at: t0, digest: "sha256:a"},                // first look: no change known
		{at: t0.Add(time.Hour), digest: "sha256:a"}, // same digest
		{at: t0.Add(3 * time.Hour), digest: "sha256:b", changedAfter: t0.Add(time.Hour), changedBy: t0.Add(3 * time.Hour)}, // pushed in between
		{at: t0.Add(4 * time.Hour), digest: "sha256:b", changedAfter: t0.Add(time.Hour), changedBy: t0.Add(3 * time.Hour)},
		{at: t0.Add(5 * time.Hour), digest: "", changedAfter: t0.Add(4 * time.Hour), changedBy: t0.Add(5 * time.Hour)}, // deleted
		{at: t0.Add(2 * time.Hour), digest: "", changedAfter: t0.Add(4 * time.Hour), changedBy: t0.Add(5 * time.Hour)}, // an older look never moves Checked back
	}
	for i, st := range steps {
		tag, err := s.ObserveTag(ref, st.digest, st.at)
		if err != nil {
			t.Fatal(err)
		}
		if tag.Digest != st.digest || !tag.ChangedAfter.Equal(st.changedAfter) || !tag.ChangedBy.Equal(st.changedBy) {
			t.Errorf("look %d: %+v; want digest %q changed after %s by %s", i, tag, st.digest, st.changedAfter, st.changedBy)
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
