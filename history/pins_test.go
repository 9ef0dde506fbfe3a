package history

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The constraint history: every pin a run published, newest first, found by package name
// as PEP 503 compares them (case, - _ . alike; a prefix finds the family), by branch, with
// its commit, run and source commit; a run saved again as it progresses (its publish step
// recorded running, then ended) is indexed once; an
// unchanged publish or a dry run adds nothing.
func TestPins(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	publish := func(id, plan, branch, commit string, at time.Time, changes ...PackageChange) *Run {
		return &Run{ID: id, Plan: plan, Start: at, Status: StatusSucceeded, Source: &Source{Commit: "src-" + id},
			Steps: []Step{{Instance: "publish", Status: StatusSucceeded, End: at.Add(time.Minute),
				Publish: &Publish{Repo: "/srv/c.git", Branch: branch, Commit: commit, Changed: commit != "", Changes: changes}}}}
	}
	runs := []*Run{
		publish("r1", "demo/main", "constraints-main", "c1", t0,
			PackageChange{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"},
			PackageChange{File: "constraints-3.12.txt", Package: "Flask_SQLAlchemy", Old: "3.0", New: "3.1"}),
		publish("r2", "demo/v1", "constraints-1-0", "c2", t0.Add(time.Hour),
			PackageChange{File: "constraints-3.11.txt", Package: "httpcore", Old: "1.0.6", New: "1.0.7"}),
		publish("r3", "demo/main", "constraints-main", "", t0.Add(2*time.Hour), // nothing changed
			PackageChange{File: "constraints-3.12.txt", Package: "httpx", Old: "0.28.1", New: "0.28.1"}),
		publish("r4", "demo/main", "constraints-main", "c4", t0.Add(3*time.Hour),
			PackageChange{File: "constraints-3.12.txt", Package: "httpx", Old: "0.28.1"}),
	}
	for _, r := range runs {
		// As the engine saves it: the publish step still running with what it pushed
		// recorded, then the step's end, then the run's.
		head, running := *r, r.Steps[0]
		head.Status, head.Steps, running.Status, running.End = StatusRunning, nil, StatusRunning, time.Time{}
		if err := s.SaveProgress(&head, map[int]Step{0: running}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveProgress(&head, map[int]Step{0: r.Steps[0]}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // saved twice, as progress does
			if err := s.SaveRun(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		q    PinQuery
		want []string // run/package
	}{
		{PinQuery{}, []string{"r4/httpx", "r2/httpcore", "r1/httpx", "r1/Flask_SQLAlchemy"}},
		{PinQuery{Package: "HTTPX"}, []string{"r4/httpx", "r1/httpx"}},
		{PinQuery{Package: "http"}, []string{"r4/httpx", "r2/httpcore", "r1/httpx"}},
		{PinQuery{Package: "flask-sqlalchemy"}, []string{"r1/Flask_SQLAlchemy"}},
		{PinQuery{Branch: "constraints-1-0"}, []string{"r2/httpcore"}},
		{PinQuery{Package: "httpx", Limit: 1}, []string{"r4/httpx"}},
		{PinQuery{Package: "nosuch"}, nil},
	}
	for _, tt := range tests {
		pins, err := s.Pins(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range pins {
			got = append(got, p.Run+"/"+p.Package)
		}
		if len(got) != len(tt.want) {
			t.Errorf("Pins(%+v) = %v, want %v", tt.q, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("Pins(%+v) = %v, want %v", tt.q, got, tt.want)
				break
			}
		}
	}
	pins, _ := s.Pins(PinQuery{Package: "httpx", Limit: 1})
	if p := pins[0]; p.Commit != "c4" || p.Source != "src-r4" || p.Branch != "constraints-main" || p.Old != "0.28.1" || p.New != "" || !p.At.Equal(t0.Add(3*time.Hour+time.Minute)) {
		t.Errorf("newest httpx pin %+v", p)
	}
}

// A store written before the pin index existed gets it built from its runs when it opens.
func TestPinsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &Run{ID: "old-1", Plan: "p", Start: time.Now(), Status: StatusSucceeded,
		Steps: []Step{{Instance: "publish", Publish: &Publish{Branch: "constraints-main", Commit: "c", Changed: true,
			Changes: []PackageChange{{File: "f", Package: "httpx", Old: "1", New: "2"}}}}}}
	if err := s.SaveRun(r); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(bucketPins)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if pins, err := s.Pins(PinQuery{Package: "httpx"}); err != nil || len(pins) != 1 || pins[0].Run != "old-1" {
		t.Errorf("pins after reopening a store without the index: %+v (%v)", pins, err)
	}
}

// The changes others made on a constraints branch, found by a publish that changed nothing
// itself, are in the history as made outside refreshd (no plan, no run: their commit,
// author and date); two publishes that both found the same commit index it once.
func TestPinsOutside(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	human := OutsideCommit{Commit: "h1", Author: "Jane <j@x>", At: t0.Add(-time.Hour),
		Changes: []PackageChange{{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"}}}
	for i, id := range []string{"r1", "r2"} {
		r := &Run{ID: id, Plan: "demo/main", Start: t0.Add(time.Duration(i) * time.Hour), Status: StatusSucceeded,
			Steps: []Step{{Instance: "publish", Status: StatusSucceeded, End: t0.Add(time.Duration(i) * time.Hour),
				Publish: &Publish{Repo: "/srv/c.git", Branch: "constraints-main", Summary: "no change", Outside: []OutsideCommit{human}}}}}
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	pins, err := s.Pins(PinQuery{Package: "httpx"})
	if err != nil {
		t.Fatal(err)
	}
	want := Pin{At: t0.Add(-time.Hour), Branch: "constraints-main", Repo: "/srv/c.git", Commit: "h1", File: "constraints-3.12.txt",
		Package: "httpx", Old: "0.27.2", New: "0.28.1", Outside: true, Author: "Jane <j@x>"}
	if len(pins) != 1 || pins[0] != want {
		t.Errorf("pins = %+v\nwant [%+v]", pins, want)
	}
}
