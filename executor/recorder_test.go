package executor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
	"github.com/refreshd/refreshd/statedir"
)

// stepOrder is an observer that keeps, for each step index, the number of attempts it
// had each time it was told of a change: the order in which the recorder made them.
type stepOrder struct {
	Observer // unused methods
	mu       sync.Mutex
	seen     map[string][]int
}

func (o *stepOrder) StepChanged(_ string, s *history.Step) {
	o.mu.Lock()
	o.seen[s.Instance] = append(o.seen[s.Instance], len(s.Attempts))
	o.mu.Unlock()
}

// gatedStore holds the first save of progress until a second one is done (or a while has
// passed, as it has when the recorder keeps the second from starting): saves that overlap,
// made to finish in the other order.
type gatedStore struct {
	*history.Store
	calls   atomic.Int32
	arrived chan struct{} // closed when the first save has its snapshot
	second  chan struct{} // closed when the second save is done
}

func (s *gatedStore) SaveProgress(head *history.Run, steps map[int]history.Step) error {
	if s.calls.Add(1) == 1 {
		close(s.arrived)
		select {
		case <-s.second:
		case <-time.After(300 * time.Millisecond):
		}
		return s.Store.SaveProgress(head, steps)
	}
	defer close(s.second)
	return s.Store.SaveProgress(head, steps)
}

// newTestRecorder is a recorder of a run of steps waiting steps on a fresh store and state
// directory, its journal open and its writer running; or, with wrap, saving through
// wrap(store) and neither journalling nor saving by itself.
func newTestRecorder(t *testing.T, steps int, obs Observer, wrap func(*history.Store) runStore) (*recorder, *history.Store, statedir.Dir) {
	t.Helper()
	dir, err := statedir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store, err := history.Open(filepath.Join(dir.Root, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec := &history.Run{ID: "r-1", Plan: "p", Status: history.StatusRunning}
	for i := range steps {
		rec.Steps = append(rec.Steps, history.Step{Instance: fmt.Sprintf("s%d", i), Status: history.StatusWaiting})
	}
	var saveTo runStore = store
	if wrap != nil {
		saveTo = wrap(store)
	}
	r := newRecorder(saveTo, obs, redact.New("hunter2-secret"), slog.New(slog.NewTextHandler(io.Discard, nil)), rec)
	if err := r.begin(); err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		return r, store, dir
	}
	j, err := dir.OpenJournal(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	r.start(j)
	return r, store, dir
}

// TestRecorderConcurrentWriters: the run's goroutines change one step, their own steps and
// the run's header at once, while saves run (the writer, and explicit ones as a process
// group's record makes). Every change is kept, the observer and the journal hear one step's
// changes in the order they were made, and the stored record is the recorder's. Without
// the recorder's lock, go test -race reports the writers (and the counts or the order
// come out wrong).
func TestRecorderConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers, changes = 8, 50
	obs := &stepOrder{seen: map[string][]int{}}
	r, store, dir := newTestRecorder(t, writers+1, obs, nil)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			own := w + 1
			for n := range changes {
				// step 0 is shared by every writer; step own is this writer's
				r.update(0, func(s *history.Step) { s.Attempts = append(s.Attempts, history.Attempt{N: len(s.Attempts) + 1}) })
				r.update(own, func(s *history.Step) {
					s.Status = history.StatusRunning
					s.Attempts = append(s.Attempts, history.Attempt{N: n + 1, Error: "token hunter2-secret refused"})
				})
				r.warn(fmt.Sprintf("w%d-%d", w, n))
				r.addVars(history.RunVar{Name: fmt.Sprintf("v%d_%d", w, n), Step: "s0", Value: "x"})
				r.addFreshness(history.Freshness{Pos: "p:1:1", Why: "why"})
				if n%10 == 0 {
					r.setProcess(history.ProcessGroup{PGID: 1000 + w})
					r.setSource(history.Source{Commit: strconv.Itoa(n)})
					r.appendStep(history.Step{Instance: fmt.Sprintf("late-%d-%d", w, n), Status: history.StatusWaiting})
				}
				r.cacheBefore("s0", "ref")
				_ = r.source()
			}
		})
	}
	wg.Wait()
	final, err := r.finish(history.StatusSucceeded, "")
	if err != nil {
		t.Fatal(err)
	}

	if got := len(final.Steps[0].Attempts); got != writers*changes {
		t.Errorf("shared step has %d attempts, want %d: changes were lost", got, writers*changes)
	}
	for i, a := range final.Steps[0].Attempts {
		if a.N != i+1 {
			t.Fatalf("shared step's attempt %d is numbered %d: two changes saw the same step", i, a.N)
		}
	}
	if len(final.Warnings) != writers*changes || len(final.Vars) != writers*changes || len(final.Freshness) != writers*changes {
		t.Errorf("run has %d warnings, %d vars, %d decisions, want %d each", len(final.Warnings), len(final.Vars), len(final.Freshness), writers*changes)
	}
	if want := writers + 1 + writers*changes/10; len(final.Steps) != want {
		t.Errorf("run has %d steps, want %d", len(final.Steps), want)
	}
	want := make([]int, writers*changes)
	for i := range want {
		want[i] = i + 1
	}
	if got := obs.seen["s0"]; !slices.Equal(got, want) {
		t.Errorf("observer heard the shared step's changes out of order: %v", got)
	}
	if got := journalCounts(t, dir.Journal("r-1"), 0); !slices.Equal(got, want) {
		t.Errorf("journal holds the shared step's changes out of order: %v", got)
	}
	stored, err := store.Run("r-1")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(stored)
	b, _ := json.Marshal(final)
	if string(a) != string(b) {
		t.Errorf("stored record differs from the recorder's:\n%s\n%s", a, b)
	}
	if strings.Contains(string(a), "hunter2-secret") {
		t.Error("a secret reached the store")
	}
}

// TestRecorderSavesInOrder: saves that overlap never let an earlier snapshot overwrite a
// later one (saveMu). A first save takes its snapshot and is held in the store; a warning
// is added and a second save made. The store must end with the warning: without saveMu
// the second save writes first and the held one, older, overwrites it.
func TestRecorderSavesInOrder(t *testing.T) {
	t.Parallel()
	gate := &gatedStore{arrived: make(chan struct{}), second: make(chan struct{})}
	r, store, _ := newTestRecorder(t, 1, nil, func(s *history.Store) runStore { gate.Store = s; return gate })
	r.warn("first")
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.persist()
	}()
	<-gate.arrived
	r.warn("second")
	r.persist()
	<-done
	stored, err := store.Run("r-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored.Warnings, []string{"first", "second"}) {
		t.Errorf("store holds warnings %q, want both: an earlier save overwrote a later one", stored.Warnings)
	}
}

// countingStore counts the saves of progress made through it.
type countingStore struct {
	*history.Store
	saves atomic.Int32
}

func (s *countingStore) SaveProgress(head *history.Run, steps map[int]history.Step) error {
	s.saves.Add(1)
	return s.Store.SaveProgress(head, steps)
}

// TestRecorderSavesAtMostEverySaveEvery: a run changing its steps every millisecond, as a
// run of short steps does, costs the store at most one save per saveEvery (plus the first),
// not one per change; and the store has every change once the run is finished. Without the
// writer's pause it saves after nearly every change.
func TestRecorderSavesAtMostEverySaveEvery(t *testing.T) {
	t.Parallel()
	counting := &countingStore{}
	r, store, _ := newTestRecorder(t, 1, nil, func(s *history.Store) runStore { counting.Store = s; return counting })
	r.start(nil)
	r.mu.Lock()
	r.unjournalled = false // as in a journalled run: the test is about the writer alone
	r.mu.Unlock()
	start := time.Now()
	changes := 0
	for time.Since(start) < 3*saveEvery {
		r.update(0, func(s *history.Step) { s.Attempts = append(s.Attempts, history.Attempt{N: len(s.Attempts) + 1}) })
		changes++
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	saves := int(counting.saves.Load())
	if most := int(elapsed/saveEvery) + 2; saves > most {
		t.Errorf("%d changes in %s made %d saves; want at most %d (one per %s and the first)", changes, elapsed, saves, most, saveEvery)
	}
	if _, err := r.finish(history.StatusSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	stored, err := store.Run("r-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(stored.Steps[0].Attempts); got != changes {
		t.Errorf("store has %d attempts after the run, want %d", got, changes)
	}
}

// TestRecorderWithoutJournal: a run whose journal could not be opened has each step change
// in the store when update returns (what the journal would otherwise keep through a kill
// -9, such as a process group about to run on), not only with the writer's next save.
func TestRecorderWithoutJournal(t *testing.T) {
	t.Parallel()
	r, store, _ := newTestRecorder(t, 1, nil, func(s *history.Store) runStore { return s })
	r.start(nil)
	for n := range 3 {
		// The first change wakes the writer, which then pauses: the later ones are in the
		// store only if update saved them itself.
		r.update(0, func(s *history.Step) { s.Attempts = append(s.Attempts, history.Attempt{N: n + 1, PGID: 4242 + n}) })
		stored, err := store.Run("r-1")
		if err != nil {
			t.Fatal(err)
		}
		if a := stored.Steps[0].Attempts; len(a) != n+1 || a[n].PGID != 4242+n {
			t.Fatalf("after change %d the store has attempts %+v; want %d, the last with its group", n+1, a, n+1)
		}
	}
	if _, err := r.finish(history.StatusSucceeded, ""); err != nil {
		t.Fatal(err)
	}
}

// journalCounts is the number of attempts of step i in each of its lines in the journal.
func journalCounts(t *testing.T, path string, i int) []int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	prefix := strconv.Itoa(i) + " "
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		var s history.Step
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("journal line: %v", err)
		}
		out = append(out, len(s.Attempts))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
