package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// wantSummary counts a whole record's steps: the independent answer the stored summary
// must equal.
func wantSummary(r *Run) *StepSummary {
	sum := &StepSummary{}
	idx := map[string]int{}
	for i, st := range r.Steps {
		sum.Total++
		if sum.Counts == nil {
			sum.Counts = map[Status]int{}
		}
		sum.Counts[st.Status]++
		name := StepOf(st.Instance)
		k, ok := idx[name]
		if !ok {
			k = len(sum.Groups)
			idx[name] = k
			sum.Groups = append(sum.Groups, StepGroup{Step: name, First: i, Counts: map[Status]int{}})
		}
		g := &sum.Groups[k]
		g.Total++
		g.Counts[st.Status]++
		if !st.Start.IsZero() && (g.Start.IsZero() || st.Start.Before(g.Start)) {
			g.Start = st.Start
		}
		if st.End.After(g.End) {
			g.End = st.End
		}
	}
	return sum
}

// TestSummaryFollowsEveryChange drives runs through random SaveRun, SaveProgress (changed
// and new steps), InterruptRunning, Finish and Prune, and checks after each that the
// headers and the run's part count exactly what the whole record holds.
func TestSummaryFollowsEveryChange(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []Status{StatusWaiting, StatusRunning, StatusSucceeded, StatusFailed, StatusSkipped, StatusInterrupted}
	steps := []string{"set-up", "build", "check", "publish"}
	check := func(id string) {
		t.Helper()
		full, err := s.Run(id)
		if err != nil {
			t.Fatal(err)
		}
		want := wantSummary(full)
		part, err := s.RunPart(id, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(part.Summary, want) {
			t.Fatalf("run %s: summary %+v, want %+v", id, part.Summary, want)
		}
		heads, err := s.Heads("", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range heads {
			if h.ID == id && (h.Summary.Total != want.Total || !maps.Equal(h.Summary.Counts, want.Counts) || h.Steps != nil || h.Summary.Groups != nil) {
				t.Fatalf("header of %s: %+v, want counts %+v and no steps", id, h.Summary, want.Counts)
			}
		}
	}
	for run := range 6 {
		id := fmt.Sprintf("r%d", run)
		r := &Run{ID: id, Plan: "p", Status: StatusRunning, Start: time.Date(2026, 1, 1, run, 0, 0, 0, time.UTC)}
		for i := range 1 + rng.IntN(20) {
			r.Steps = append(r.Steps, Step{Instance: fmt.Sprintf("%s[%d]", steps[rng.IntN(len(steps))], i), Status: StatusWaiting})
		}
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
		check(id)
		for range 30 {
			changed := map[int]Step{}
			for range 1 + rng.IntN(4) {
				i := rng.IntN(len(r.Steps) + 2)
				if i >= len(r.Steps) { // a new instance (a matrix expanded at run time)
					i = len(r.Steps)
					r.Steps = append(r.Steps, Step{Instance: fmt.Sprintf("%s[new%d]", steps[rng.IntN(len(steps))], i)})
				}
				r.Steps[i].Status = statuses[rng.IntN(len(statuses))]
				// Times move forward, as a run's do: the group spans follow them.
				if r.Steps[i].Start.IsZero() {
					r.Steps[i].Start = r.Start.Add(time.Duration(rng.IntN(600)) * time.Second)
				}
				if end := r.Steps[i].Start.Add(time.Duration(rng.IntN(600)) * time.Second); end.After(r.Steps[i].End) {
					r.Steps[i].End = end
				}
				changed[i] = r.Steps[i]
			}
			if err := s.SaveProgress(&Run{ID: id, Plan: "p", Status: StatusRunning, Start: r.Start}, changed); err != nil {
				t.Fatal(err)
			}
			check(id)
		}
		if run%2 == 0 {
			if err := s.Finish(id, StatusFailed, "test", r.Start.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			check(id)
		}
	}
	if _, err := s.InterruptRunning("test"); err != nil {
		t.Fatal(err)
	}
	for run := range 6 {
		check(fmt.Sprintf("r%d", run))
	}
	if _, err := s.Prune("p", 2); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte(bucketSummaries)).Stats().KeyN; n != 2 {
			return fmt.Errorf("%d summaries left after pruning to 2 runs", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestOldStoreGetsSummaries: a store written before summaries (runs and steps, inline
// steps too, no summaries bucket) still opens read-only and lists with counts, and Open
// adds the summaries once, equal to the records.
func TestOldStoreGetsSummaries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	inline := newRun("inline", 3)
	inline.Steps[2].Status = StatusFailed
	bucketed := newRun("bucketed", 4)
	bucketed.Start = bucketed.Start.Add(time.Hour)
	bucketed.Steps[0].Status = StatusSucceeded
	err = db.Update(func(tx *bolt.Tx) error {
		runs, _ := tx.CreateBucket([]byte(bucketRuns))
		steps, _ := tx.CreateBucket([]byte(bucketSteps))
		data, _ := json.Marshal(inline)
		runs.Put([]byte("inline"), data)
		head := *bucketed
		head.Steps = nil
		data, _ = json.Marshal(&head)
		runs.Put([]byte("bucketed"), data)
		b, _ := steps.CreateBucket([]byte("bucketed"))
		for i := range bucketed.Steps {
			putStep(b, i, &bucketed.Steps[i])
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := map[string]map[Status]int{
		"inline":   {StatusWaiting: 2, StatusFailed: 1},
		"bucketed": {StatusSucceeded: 1, StatusWaiting: 3},
	}
	heads := func(s *Store) {
		t.Helper()
		got, err := s.Heads("", 0)
		if err != nil || len(got) != 2 {
			t.Fatalf("Heads: %d runs, %v", len(got), err)
		}
		for _, h := range got {
			if !maps.Equal(h.Summary.Counts, wantCounts[h.ID]) || h.Steps != nil {
				t.Errorf("header %s: %v, %d steps; want %v and none", h.ID, h.Summary.Counts, len(h.Steps), wantCounts[h.ID])
			}
		}
		part, err := s.RunPart("inline", 1, 5)
		if err != nil || len(part.Steps) != 2 || part.Steps[0].Instance != "s[1]" || part.Summary.Total != 3 {
			t.Errorf("RunPart(inline, 1, 5): %+v, %v", part, err)
		}
		if i, st, err := s.Step("inline", "s[2]"); err != nil || i != 2 || st.Status != StatusFailed {
			t.Errorf("Step(inline, s[2]) = %d %+v %v", i, st, err)
		}
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	heads(ro) // counted from the steps: nothing stored
	ro.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.View(func(tx *bolt.Tx) error {
		for id, want := range wantCounts {
			sum, err := readSummary(tx, id, false)
			if err != nil || sum == nil || !maps.Equal(sum.Counts, want) {
				return fmt.Errorf("stored summary of %s after Open: %+v, %v; want %v", id, sum, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	heads(s)
}

// TestRunPartAndStep: a window of a run's steps, and one step found by its instance among
// instances that share its beginning or hold JSON-escaped characters.
func TestRunPartAndStep(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := newRun("r", 10)
	r.Steps[3].Instance = `x["a"]`
	r.Steps[4].Instance = `x["a"]2`
	r.Steps[5].Instance = `<b>&"\`
	if err := s.SaveRun(r); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ offset, limit, want int }{{0, 4, 4}, {8, 4, 2}, {10, 4, 0}, {3, 1, 1}} {
		p, err := s.RunPart("r", tt.offset, tt.limit)
		if err != nil || len(p.Steps) != tt.want || p.Summary.Total != 10 {
			t.Errorf("RunPart(%d, %d): %d steps, %v; want %d", tt.offset, tt.limit, len(p.Steps), err, tt.want)
			continue
		}
		if tt.want > 0 && p.Steps[0].Instance != r.Steps[tt.offset].Instance {
			t.Errorf("RunPart(%d, %d) starts at %q", tt.offset, tt.limit, p.Steps[0].Instance)
		}
	}
	if _, err := s.RunPart("r", -1, 4); err == nil {
		t.Error("RunPart from -1 succeeded")
	}
	for i, inst := range []string{"s[0]", `x["a"]`, `x["a"]2`, `<b>&"\`, "s[9]"} {
		want := []int{0, 3, 4, 5, 9}[i]
		if got, st, err := s.Step("r", inst); err != nil || got != want || st.Instance != inst {
			t.Errorf("Step(%q) = %d %v, want %d", inst, got, err, want)
		}
	}
	for _, inst := range []string{"s[", "x", `x["a"`, "nope"} {
		if i, st, err := s.Step("r", inst); err != nil || st != nil || i != -1 {
			t.Errorf("Step(%q) = %d %v %v, want none", inst, i, st, err)
		}
	}
	if _, _, err := s.Step("nope", "s[0]"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Step of a missing run: %v, want not found", err)
	}
}

// allocated is the bytes f allocates, the least of a few tries.
func allocated(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 3 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		least = min(least, b.TotalAlloc-a.TotalAlloc)
	}
	return least
}

// TestReadsCostWhatTheyShow: listing the headers of a run, reading its page of 200 steps
// and finding one step cost about the same for a run of 10,000 instances as for one of
// 1,000 (the whole record costs ten times more): what a page reads is bounded by what it
// shows, not by the run.
func TestReadsCostWhatTheyShow(t *testing.T) {
	// Not parallel: the bytes are counted for the whole process.
	s, err := Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{1000, 10000} {
		r := newRun(fmt.Sprintf("r%d", n), n)
		r.Plan = r.ID
		for i := range r.Steps {
			r.Steps[i].Attempts = []Attempt{{N: 1, Start: r.Start, End: r.Start, Log: "/var/lib/refreshd/logs/some/where.log", Error: "exit code 1: a failure of some length"}}
		}
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name    string
		read    func(id string)
		bounded bool
	}{
		{"Heads", func(id string) { s.Heads(id, 0) }, true},
		{"RunPart", func(id string) { s.RunPart(id, 0, 200) }, true},
		{"Step", func(id string) { s.Step(id, "s[700]") }, true},
		{"Run (the whole record)", func(id string) { s.Run(id) }, false},
	} {
		small := allocated(func() { tt.read("r1000") })
		large := allocated(func() { tt.read("r10000") })
		ratio := float64(large) / float64(small)
		t.Logf("%s: %d bytes for 1,000 steps, %d for 10,000 (x%.2f)", tt.name, small, large, ratio)
		if tt.bounded && ratio > 1.5 {
			t.Errorf("%s allocates %d bytes for a run of 10,000 steps, x%.1f what it does for 1,000: not bounded by what it reads", tt.name, large, ratio)
		}
		if !tt.bounded && ratio < 5 {
			t.Errorf("%s: x%.1f, want about x10 (the check measures nothing)", tt.name, ratio)
		}
	}
}
