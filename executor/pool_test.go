package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/statedir"
)

func poolBuilder(nodes, maxParallel int) *plan.Builder {
	b := &plan.Builder{Name: "pool"}
	for i := range nodes {
		b.Nodes = append(b.Nodes, plan.Node{Name: fmt.Sprintf("pool%d", i), Platform: "linux/amd64", MaxParallel: maxParallel})
	}
	return b
}

func TestAcquireSlotPlacesOnFreeLiveNodes(t *testing.T) {
	state := t.TempDir()
	b := poolBuilder(2, 2)
	m := newSlotManager()
	var h nodeHealth
	var got []string
	for range 4 {
		s, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &h)
		if err != nil {
			t.Fatal(err)
		}
		defer s.release()
		got = append(got, fmt.Sprintf("%s.%d via %s", s.Node.Name, s.Slot, s.Builder))
	}
	want := "pool0.0 via pool.pool0,pool0.1 via pool.pool0,pool1.0 via pool.pool1,pool1.1 via pool.pool1"
	if strings.Join(got, ",") != want {
		t.Errorf("slots %v, want %s", got, want)
	}
	// All four busy: a fifth waits until its context ends, naming the live nodes.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := acquireSlot(ctx, m, state, b, "linux/amd64", &h); err == nil || !strings.Contains(err.Error(), "wait for a free node of builder pool for linux/amd64 (pool0, pool1)") {
		t.Errorf("fifth slot: %v", err)
	}
	if n := m.waiting(); n != 0 {
		t.Errorf("%d waiters left queued after their context ended", n)
	}
	// A node marked down is never given; none live is an error at once.
	h.markDown("pool", "pool0", "inactive")
	h.markDown("pool", "pool1", "inactive")
	if _, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &h); err == nil || !strings.Contains(err.Error(), "no live node for linux/amd64") {
		t.Errorf("all down: %v", err)
	}
	if _, err := acquireSlot(t.Context(), m, state, b, "linux/arm64", &h); err == nil || !strings.Contains(err.Error(), "no node pinned to linux/arm64") {
		t.Errorf("no such platform: %v", err)
	}
}

// waitQueued waits until m has n waiters, so that the next one is known to arrive after them.
func waitQueued(t *testing.T, m *slotManager, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", m.waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlotsFirstComeFirstServed: builds of several runs (each its own health) wait for a pool
// of one node; they get the slot in the order they asked, each as the previous releases it,
// and a waiter for another platform is not held up behind them.
func TestSlotsFirstComeFirstServed(t *testing.T) {
	state := t.TempDir()
	b := poolBuilder(1, 1)
	b.Nodes = append(b.Nodes, plan.Node{Name: "x86", Platform: "linux/386", MaxParallel: 1})
	m := newSlotManager()
	first, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 6
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			s, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(time.Millisecond) // a build: newcomers could overtake a poller here
			s.release()
		})
		waitQueued(t, m, i+1)
	}
	// The other platform's node is free: served at once, whatever the queue ahead.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	other, err := acquireSlot(ctx, m, state, b, "linux/386", &nodeHealth{})
	if err != nil {
		t.Fatalf("linux/386 waited behind linux/amd64 builds: %v", err)
	}
	other.release()
	first.release()
	wg.Wait()
	if want := []int{0, 1, 2, 3, 4, 5}; !slices.Equal(order, want) {
		t.Errorf("slots given in order %v, want arrival order %v", order, want)
	}
}

// TestSlotsFaults: a slot held through another open file of its lock (to flock another
// owner, as another process is: TestSlotsAnotherProcess uses a real one) is taken when that
// owner lets go; a cancelled waiter leaves the queue and its turn passes on; a waiter whose
// nodes all go down while it waits is told so; a run step's whole-builder lock queues with
// the builds.
func TestSlotsFaults(t *testing.T) {
	state := t.TempDir()
	b := poolBuilder(1, 1)
	path := statedir.Dir{Root: state}.NodeSlotLock("pool", "pool0", 0)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	t.Run("held through another open file", func(t *testing.T) {
		m := newSlotManager()
		foreign := flock.New(path)
		if ok, err := foreign.TryLock(); !ok || err != nil {
			t.Fatalf("hold: %v %v", ok, err)
		}
		slotOnceFreed(t, m, state, b, func() { _ = foreign.Unlock() })
	})
	t.Run("cancelled waiter", func(t *testing.T) {
		m := newSlotManager()
		holder, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancelled := make(chan error, 1)
		go func() {
			_, err := acquireSlot(ctx, m, state, b, "linux/amd64", &nodeHealth{})
			cancelled <- err
		}()
		waitQueued(t, m, 1)
		next := make(chan error, 1)
		go func() {
			s, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
			s.release()
			next <- err
		}()
		waitQueued(t, m, 2)
		cancel()
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter: %v", err)
		}
		holder.release()
		if err := <-next; err != nil {
			t.Errorf("the waiter after a cancelled one: %v", err)
		}
	})
	t.Run("nodes down while waiting", func(t *testing.T) {
		m := newSlotManager()
		holder, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
		if err != nil {
			t.Fatal(err)
		}
		var h nodeHealth
		got := make(chan error, 1)
		go func() {
			_, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &h)
			got <- err
		}()
		waitQueued(t, m, 1)
		h.markDown("pool", "pool0", "went down")
		holder.release()
		select {
		case err := <-got:
			if err == nil || !strings.Contains(err.Error(), "no live node for linux/amd64") {
				t.Errorf("waiter whose node went down: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter whose only node went down still waits")
		}
	})
	t.Run("whole builder queues with builds", func(t *testing.T) {
		m := newSlotManager()
		holder, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var order []string
		var wg sync.WaitGroup
		wg.Go(func() {
			s, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, "build")
			mu.Unlock()
			s.release()
		})
		waitQueued(t, m, 1)
		wg.Go(func() {
			unlock, err := lockWholeBuilder(t.Context(), m, state, b)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, "whole builder")
			mu.Unlock()
			unlock()
		})
		waitQueued(t, m, 2)
		holder.release()
		wg.Wait()
		if want := []string{"build", "whole builder"}; !slices.Equal(order, want) {
			t.Errorf("order %v, want %v", order, want)
		}
	})
}

// TestSlotsAnotherProcess: a real other process (flock(1), as a `refreshd run --local` on
// the same state directory would) holds the only slot; the build waits, and gets the slot
// once that process is killed and the kernel drops its lock.
func TestSlotsAnotherProcess(t *testing.T) {
	bin := testkit.Need(t, "flock")[0]
	state := t.TempDir()
	b := poolBuilder(1, 1)
	path := statedir.Dir{Root: state}.NodeSlotLock("pool", "pool0", 0)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	// flock(1) runs sleep holding the lock's descriptor too: both die, as a process group.
	holder := exec.Command(bin, "--exclusive", path, "sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { _ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() { kill(); _ = holder.Wait() })
	probe := flock.New(path)
	testkit.WaitFor(t, "flock(1) to hold the slot", 5*time.Second, func() bool {
		ok, err := probe.TryLock()
		if ok {
			_ = probe.Unlock()
		}
		return err == nil && !ok
	})
	slotOnceFreed(t, newSlotManager(), state, b, kill)
}

// slotOnceFreed checks that a build waiting for b's only linux/amd64 slot, held outside m,
// is not given it while it is held (three foreign polls), and is given it once free lets go.
func slotOnceFreed(t *testing.T, m *slotManager, state string, b *plan.Builder, free func()) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		s, err := acquireSlot(t.Context(), m, state, b, "linux/amd64", &nodeHealth{})
		s.release()
		got <- err
	}()
	waitQueued(t, m, 1)
	select {
	case err := <-got:
		t.Fatalf("slot given while another owner holds it: %v", err)
	case <-time.After(3 * slotForeignPoll):
	}
	free()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slot freed by its other owner never given")
	}
}

// BenchmarkSlotHandover is one build's turn on a pool of N nodes whose slots are all held by
// builds of this process: queueing (one pass over the pool, no system call for slots held
// here) and the handover of a released slot, flock kept. No waiter polls: this is what a
// turn costs whatever the wait.
func BenchmarkSlotHandover(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			state := b.TempDir()
			pool := poolBuilder(n, 1)
			m := newSlotManager()
			var held []*nodeSlot
			for range n {
				s, err := acquireSlot(b.Context(), m, state, pool, "linux/amd64", &nodeHealth{})
				if err != nil {
					b.Fatal(err)
				}
				held = append(held, s)
			}
			h := &nodeHealth{}
			i := 0
			for b.Loop() {
				got := make(chan *nodeSlot)
				go func() {
					s, err := acquireSlot(b.Context(), m, state, pool, "linux/amd64", h)
					if err != nil {
						b.Error(err)
					}
					got <- s
				}()
				for m.waiting() == 0 {
					runtime.Gosched()
				}
				held[i%n].release()
				held[i%n] = <-got
				i++
			}
			for _, s := range held {
				s.release()
			}
		})
	}
}

// TestProvisionShare: a run arriving while another provisions the same builder waits and
// takes its outcome; when that provisioning was abandoned (its run cancelled) the waiter
// provisions for itself; another definition of the builder, or another docker config, is
// another provisioning.
func TestProvisionShare(t *testing.T) {
	b := poolBuilder(2, 1)
	moved := poolBuilder(2, 1)
	moved.Nodes[1].Endpoint = "tcp://10.0.0.9:1234"
	elsewhere := poolBuilder(2, 1)
	elsewhere.Pos, elsewhere.Nodes[0].Pos = plan.Pos{File: "builders.yaml", Line: 3}, plan.Pos{Line: 7}
	key := provisionKey(b, "/cfg")
	switch {
	case key != provisionKey(elsewhere, "/cfg"):
		t.Error("the same builder declared elsewhere is another provisioning")
	case key == provisionKey(moved, "/cfg"):
		t.Error("a node moved to another endpoint shares the old provisioning")
	case key == provisionKey(b, "/other"):
		t.Error("another docker config shares the provisioning")
	}

	s := newProvisionShare()
	f, leader := s.join(key)
	if !leader {
		t.Fatal("first run to provision is not the leader")
	}
	g, leader := s.join(key)
	if leader || g != f {
		t.Fatal("a run arriving during a provisioning does not join it")
	}
	s.finish(key, f, provisionOutcome{changed: true}, true)
	<-g.done
	if !g.abandoned {
		t.Error("an abandoned provisioning is not reported so")
	}
	h, leader := s.join(key)
	if !leader || h == f {
		t.Fatal("after an abandoned provisioning the next run does not provision itself")
	}
	want := errors.New("no running node for linux/amd64")
	s.finish(key, h, provisionOutcome{err: want}, false)
	if <-h.done; h.abandoned || h.out.err != want {
		t.Errorf("outcome %+v abandoned %v, want the leader's error", h.out, h.abandoned)
	}
}
