package history

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func newRun(id string, n int) *Run {
	r := &Run{ID: id, Plan: "p", Status: StatusRunning, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range n {
		r.Steps = append(r.Steps, Step{Instance: fmt.Sprintf("s[%d]", i), Status: StatusWaiting})
	}
	return r
}

// TestSaveProgress checks that SaveProgress writes the header and only the named steps: a step
// changed in memory but not named keeps its stored state.
func TestSaveProgress(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := newRun("r1", 3)
	if err := s.SaveRun(r); err != nil {
		t.Fatal(err)
	}
	r.Steps[1].Status = StatusSucceeded
	r.Steps[2].Status = StatusFailed // changed, not saved
	r.Reason = "progress"
	if err := s.SaveProgress(&Run{ID: r.ID, Plan: r.Plan, Status: r.Status, Start: r.Start, Reason: r.Reason}, map[int]Step{1: r.Steps[1]}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run("r1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{StatusWaiting, StatusSucceeded, StatusWaiting}
	for i, st := range got.Steps {
		if st.Status != want[i] || st.Instance != fmt.Sprintf("s[%d]", i) {
			t.Errorf("step %d = %s %s, want %s", i, st.Instance, st.Status, want[i])
		}
	}
	if got.Reason != "progress" || len(got.Steps) != 3 {
		t.Errorf("header not saved: reason %q, %d steps", got.Reason, len(got.Steps))
	}
	if err := s.SaveProgress(r, map[int]Step{-1: {}}); err == nil {
		t.Error("SaveProgress of a negative step index succeeded")
	}
}

// TestInlineStepsStillRead reads a record as refreshd wrote it before steps had their own
// bucket (steps inside the run's JSON), and prunes it.
func TestInlineStepsStillRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	old := newRun("old", 2)
	old.Status = StatusSucceeded
	data, _ := json.Marshal(old)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucketRuns)).Put([]byte("old"), data) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run("old")
	if err != nil || len(got.Steps) != 2 || got.Steps[1].Instance != "s[1]" {
		t.Fatalf("Run(old) = %+v, %v", got, err)
	}
	for i := range 3 {
		r := newRun(fmt.Sprintf("new%d", i), 2)
		r.Status, r.Start = StatusSucceeded, r.Start.Add(time.Duration(i+1)*time.Hour)
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := s.Prune("p", 1)
	if err != nil || len(removed) != 3 {
		t.Fatalf("Prune = %d runs, %v", len(removed), err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		n := 0
		tx.Bucket([]byte(bucketSteps)).ForEachBucket(func([]byte) error { n++; return nil })
		if n != 1 {
			return fmt.Errorf("%d step buckets left after pruning to one run", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	s.Close()
}

// BenchmarkSaveProgress records one step's change in runs of 1,000 and 10,000 steps, the
// way the engine does while a run goes: the time per save must not grow with the run.
func BenchmarkSaveProgress(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("steps=%d", n), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "history.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r := newRun("r", n)
			if err := s.SaveRun(r); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				r.Steps[i%n].Status = StatusSucceeded
				if err := s.SaveProgress(r, map[int]Step{i % n: r.Steps[i%n]}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
