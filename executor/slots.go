package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/refreshd/refreshd/plan"
)

// slotManager hands the node build slots (statedir.Dir.NodeSlotLock) to the builds of one
// process, first come first served: the daemon runs many plans at once, and a build that
// asked first must not lose its turn to one that happened to try at a better moment.
//
// Each slot is a flock in the state directory, so other processes (refreshd run --local)
// still share the nodes. Within the process nobody polls: a waiter is queued and handed a
// slot when one it can use is released (the flock is passed on without being unlocked, so
// no other process slips in between) or, when some slot it can use is held by another
// process, by a single timer (foreignPoll) that tries those slots again for the whole queue
// while such a waiter exists. Across processes the order is whoever tries first.
type slotManager struct {
	foreignPoll time.Duration

	mu    sync.Mutex
	held  map[string]*flock.Flock // slot lock path -> its flock, held by a build of this process
	queue []*slotWaiter           // in arrival order
	timer *time.Timer             // armed while a queued waiter waits on another process
}

// slotForeignPoll is how often slots held by another process are tried again, while a build
// of this process waits for one of them.
const slotForeignPoll = 250 * time.Millisecond

func newSlotManager() *slotManager {
	return &slotManager{foreignPoll: slotForeignPoll, held: map[string]*flock.Flock{}}
}

// slotChoice is one slot a waiter can take: its lock file, and the node and slot number it
// stands for.
type slotChoice struct {
	Path string
	Node plan.Node
	Slot int
}

// slotWaiter is a build waiting for one of want, in preference order. usable, if set, is
// asked when a slot is about to be given (a node found down meanwhile is not given); when
// none of want is usable any more the waiter gets errNoUsableSlot.
type slotWaiter struct {
	want   []slotChoice
	usable func(plan.Node) bool
	got    chan slotGrant // buffered: a grant never blocks the manager
}

type slotGrant struct {
	choice slotChoice
	err    error
}

var errNoUsableSlot = errors.New("no usable node left")

// acquire waits for one of want, first come first served among this process's waiters, until
// ctx ends. The slot is held until release(choice.Path).
func (m *slotManager) acquire(ctx context.Context, want []slotChoice, usable func(plan.Node) bool) (slotChoice, error) {
	w := &slotWaiter{want: want, usable: usable, got: make(chan slotGrant, 1)}
	m.mu.Lock()
	m.queue = append(m.queue, w)
	m.dispatch()
	m.mu.Unlock()
	select {
	case g := <-w.got:
		return g.choice, g.err
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if i := slices.Index(m.queue, w); i >= 0 {
		m.queue = slices.Delete(m.queue, i, i+1)
		return slotChoice{}, context.Cause(ctx)
	}
	// Granted while ctx ended: give the slot to the next waiter.
	if g := <-w.got; g.err == nil {
		m.releaseLocked(g.choice.Path)
	}
	return slotChoice{}, context.Cause(ctx)
}

// waiting is the number of queued waiters (tests).
func (m *slotManager) waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

// release gives the slot at path to the first queued waiter that can use it, the flock still
// held, or unlocks it.
func (m *slotManager) release(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked(path)
}

func (m *slotManager) releaseLocked(path string) {
	l := m.held[path]
	if l == nil {
		return
	}
	for i, w := range m.queue {
		for _, c := range w.want {
			if c.Path != path || !w.canUse(c) {
				continue
			}
			m.queue = slices.Delete(m.queue, i, i+1)
			w.got <- slotGrant{choice: c}
			return
		}
	}
	delete(m.held, path)
	_ = l.Unlock()
	// A waiter whose every node went down since it queued is waiting for nothing.
	m.dispatch()
}

func (w *slotWaiter) canUse(c slotChoice) bool { return w.usable == nil || w.usable(c.Node) }

// dispatch serves the queue in order: each waiter gets the first slot it can use that no
// build of this process holds and no other process holds. A slot found busy is not tried
// again for later waiters in the same pass, so a later waiter never takes a slot an earlier
// one could not get. Caller holds mu.
func (m *slotManager) dispatch() {
	busy := map[string]bool{}
	foreign := false
	for i := 0; i < len(m.queue); {
		w := m.queue[i]
		grant, live := slotGrant{}, false
		found := false
		for _, c := range w.want {
			if !w.canUse(c) {
				continue
			}
			live = true
			if m.held[c.Path] != nil || busy[c.Path] {
				continue
			}
			l := flock.New(c.Path)
			ok, err := l.TryLock()
			if err != nil {
				grant, found = slotGrant{err: fmt.Errorf("lock %s: %w", c.Path, err)}, true
				break
			}
			if !ok {
				busy[c.Path], foreign = true, true
				continue
			}
			m.held[c.Path] = l
			grant, found = slotGrant{choice: c}, true
			break
		}
		if !live {
			grant, found = slotGrant{err: errNoUsableSlot}, true
		}
		if !found {
			i++
			continue
		}
		m.queue = slices.Delete(m.queue, i, i+1)
		w.got <- grant
	}
	if foreign && m.timer == nil {
		m.timer = time.AfterFunc(m.foreignPoll, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.timer = nil
			m.dispatch()
		})
	}
}
