package executor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

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

// holdAll takes every slot of b's nodes, as other builds would.
func holdAll(t testing.TB, state string, b *plan.Builder) {
	if err := os.MkdirAll(statedir.Dir{Root: state}.Locks(), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, n := range b.Nodes {
		for s := range n.MaxParallel {
			l := flock.New(statedir.Dir{Root: state}.NodeSlotLock(b.Name, n.Name, s))
			if ok, err := l.TryLock(); !ok || err != nil {
				t.Fatalf("hold %s slot %d: %v %v", n.Name, s, ok, err)
			}
			t.Cleanup(func() { _ = l.Unlock() })
		}
	}
}

func TestAcquireSlotPlacesOnFreeLiveNodes(t *testing.T) {
	state := t.TempDir()
	b := poolBuilder(2, 2)
	var h nodeHealth
	var got []string
	for range 4 {
		s, err := acquireSlot(t.Context(), state, b, "linux/amd64", &h)
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
	if _, err := acquireSlot(ctx, state, b, "linux/amd64", &h); err == nil || !strings.Contains(err.Error(), "wait for a free node of builder pool for linux/amd64 (pool0, pool1)") {
		t.Errorf("fifth slot: %v", err)
	}
	// A node marked down is never given; none live is an error at once.
	h.markDown("pool", "pool0", "inactive")
	h.markDown("pool", "pool1", "inactive")
	if _, err := acquireSlot(t.Context(), state, b, "linux/amd64", &h); err == nil || !strings.Contains(err.Error(), "no live node for linux/amd64") {
		t.Errorf("all down: %v", err)
	}
	if _, err := acquireSlot(t.Context(), state, b, "linux/arm64", &h); err == nil || !strings.Contains(err.Error(), "no node pinned to linux/arm64") {
		t.Errorf("no such platform: %v", err)
	}
}

// BenchmarkSlotPollBusy is one polling pass of a build waiting for a slot while every slot
// of N nodes is held: what each waiter costs every 100 ms (slotPoll).
func BenchmarkSlotPollBusy(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			state := b.TempDir()
			pool := poolBuilder(n, 1)
			holdAll(b, state, pool)
			ctx, cancel := context.WithCancel(b.Context())
			cancel() // one pass, then the wait ends
			for b.Loop() {
				if _, err := acquireSlot(ctx, state, pool, "linux/amd64", &nodeHealth{}); err == nil {
					b.Fatal("got a slot while all are held")
				}
			}
		})
	}
}
