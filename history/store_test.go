package history

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openT(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestSaveAndList(t *testing.T) {
	s, _ := openT(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, plan := range []string{"a", "b", "a", "a"} {
		r := &Run{ID: fmt.Sprintf("run%d", i), Plan: plan, Trigger: TriggerManual, Start: base.Add(time.Duration(i) * time.Minute), Status: StatusSucceeded,
			Steps: []Step{{Instance: "s", Status: StatusSucceeded, Attempts: []Attempt{{N: 1, ExitCode: 0}}}}}
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		plan  string
		limit int
		want  []string
	}{
		{"", 0, []string{"run3", "run2", "run1", "run0"}},
		{"a", 0, []string{"run3", "run2", "run0"}},
		{"a", 2, []string{"run3", "run2"}},
		{"b", 5, []string{"run1"}},
		{"zzz", 0, nil},
	}
	for _, tt := range tests {
		runs, err := s.Runs(tt.plan, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Runs(%q, %d) = %v, want %v", tt.plan, tt.limit, got, tt.want)
		}
	}
	r, err := s.Run("run2")
	if err != nil || r.Plan != "a" || len(r.Steps) != 1 || r.Steps[0].Attempts[0].N != 1 {
		t.Fatalf("Run(run2) = %+v, %v", r, err)
	}
	if _, err := s.Run("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Run(nope) error = %v, want ErrNotFound", err)
	}
}

func TestSecondOpenerFailsClearly(t *testing.T) {
	_, path := openT(t)
	start := time.Now()
	_, err := Open(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("second Open took %s", time.Since(start))
	}
	t.Logf("second opener: %v", err)
}

func TestInterruptRunning(t *testing.T) {
	s, path := openT(t)
	now := time.Now().UTC()
	running := &Run{ID: "r1", Plan: "p", Start: now, Status: StatusRunning, Steps: []Step{
		{Instance: "done", Status: StatusSucceeded, End: now},
		{Instance: "mid", Status: StatusRunning, Start: now, Attempts: []Attempt{{N: 1, Start: now}}},
		{Instance: "later", Status: StatusWaiting},
	}}
	finished := &Run{ID: "r0", Plan: "p", Start: now.Add(-time.Hour), End: now, Status: StatusFailed}
	for _, r := range []*Run{running, finished} {
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	// Reopen, as a restarted process would.
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, err := s.InterruptRunning("refreshd stopped while the run was running")
	if err != nil || fmt.Sprint(ids) != "[r1]" {
		t.Fatalf("InterruptRunning = %v, %v", ids, err)
	}
	r, _ := s.Run("r1")
	if r.Status != StatusInterrupted || r.End.IsZero() || r.Reason == "" {
		t.Errorf("run: %+v", r)
	}
	want := []Status{StatusSucceeded, StatusInterrupted, StatusInterrupted}
	for i, st := range r.Steps {
		if st.Status != want[i] {
			t.Errorf("step %s: %s, want %s", st.Instance, st.Status, want[i])
		}
	}
	if a := r.Steps[1].Attempts[0]; a.End.IsZero() || a.ExitCode != -1 || !a.Interrupted {
		t.Errorf("open attempt not closed as interrupted: %+v", a)
	}
	if r0, _ := s.Run("r0"); r0.Status != StatusFailed {
		t.Errorf("finished run changed: %s", r0.Status)
	}
	if ids, _ := s.InterruptRunning("again"); len(ids) != 0 {
		t.Errorf("second InterruptRunning marked %v", ids)
	}
}

func TestPrune(t *testing.T) {
	s, _ := openT(t)
	base := time.Now().UTC()
	for i := range 5 {
		st := StatusSucceeded
		if i == 0 {
			st = StatusRunning // the oldest is (oddly) running: never pruned
		}
		s.SaveRun(&Run{ID: fmt.Sprintf("p-%d", i), Plan: "p", Start: base.Add(time.Duration(i) * time.Second), Status: st})
	}
	s.SaveRun(&Run{ID: "q-0", Plan: "q", Start: base})
	removed, err := s.Prune("p", 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range removed {
		got = append(got, r.ID)
	}
	if fmt.Sprint(got) != "[p-2 p-1]" {
		t.Errorf("removed %v", got)
	}
	left, _ := s.Runs("", 0)
	if len(left) != 4 {
		t.Errorf("left %d runs, want 4 (p-4 p-3 p-0 q-0)", len(left))
	}
	if _, err := s.Prune("p", 0); err == nil {
		t.Error("Prune keep 0: no error")
	}
}

// TestPruneDryRuns checks that dry runs never push real runs out: each kind keeps its own
// newest keep.
func TestPruneDryRuns(t *testing.T) {
	s, _ := openT(t)
	base := time.Now().UTC()
	for i := range 3 { // real runs first, then newer dry runs
		s.SaveRun(&Run{ID: fmt.Sprintf("p-real-%d", i), Plan: "p", Start: base.Add(time.Duration(i) * time.Second), Status: StatusSucceeded})
	}
	for i := range 3 {
		s.SaveRun(&Run{ID: fmt.Sprintf("p-dry-%d", i), Plan: "p", Start: base.Add(time.Duration(10+i) * time.Second), Status: StatusSucceeded, DryRun: true})
	}
	removed, err := s.Prune("p", 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range removed {
		got = append(got, r.ID)
	}
	if fmt.Sprint(got) != "[p-dry-0 p-real-0]" {
		t.Errorf("removed %v, want [p-dry-0 p-real-0]", got)
	}
}

func TestLastScheduled(t *testing.T) {
	s, _ := openT(t)
	if got, err := s.LastScheduled("p"); err != nil || !got.IsZero() {
		t.Fatalf("never scheduled: %v, %v", got, err)
	}
	at := time.Date(2026, 3, 29, 2, 30, 0, 123, time.FixedZone("X", 3600))
	if err := s.SetLastScheduled("p", at); err != nil {
		t.Fatal(err)
	}
	got, err := s.LastScheduled("p")
	if err != nil || !got.Equal(at) {
		t.Fatalf("LastScheduled = %v, %v; want %v", got, err, at)
	}
}
