package web

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// streamSlots bounds the live streams served at once, overall and per client (remote IP),
// without letting anyone keep them: a new follower always gets a slot, and when none is
// free the oldest stream of the client holding the most (its own oldest, past its share)
// is ended to make room. Thirty-two clients that open a stream and never read it thus
// lock nobody out: the next follower takes the slot of one of them.
type streamSlots struct {
	max, perClient int

	mu   sync.Mutex
	held map[*slot]struct{}
}

// slot is one live stream being served.
type slot struct {
	client  string
	since   time.Time
	evicted chan struct{} // closed when the slot was taken for another follower
	rc      *http.ResponseController

	mu   sync.Mutex
	done bool // the handler has returned: its connection may serve another request
}

// cutOff ends the writes of an evicted stream that did not end by itself.
func (sl *slot) cutOff() {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if !sl.done {
		sl.rc.SetWriteDeadline(time.Now())
	}
}

// close marks the stream's handler done; it clears the connection's write deadline for
// whatever the connection serves next.
func (sl *slot) close() {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.done = true
	sl.rc.SetWriteDeadline(time.Time{})
}

func newStreamSlots(limit int) *streamSlots {
	return &streamSlots{max: limit, perClient: max(1, limit/2), held: map[*slot]struct{}{}}
}

// evictGrace is how long an evicted stream has to send its stop event before its
// connection's writes are cut off (a follower that does not read would block them).
const evictGrace = time.Second

// take gives r's stream a slot, evicting another when the client or everyone is at the cap.
func (s *streamSlots) take(r *http.Request, rc *http.ResponseController) *slot {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	sl := &slot{client: client, since: time.Now(), evicted: make(chan struct{}), rc: rc}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count(client) >= s.perClient {
		s.evict(client)
	}
	if len(s.held) >= s.max {
		s.evict(s.busiest())
	}
	s.held[sl] = struct{}{}
	return sl
}

// release frees sl (if it was not taken already) when its handler returns.
func (s *streamSlots) release(sl *slot) {
	s.mu.Lock()
	delete(s.held, sl)
	s.mu.Unlock()
	sl.close()
}

func (s *streamSlots) count(client string) int {
	n := 0
	for sl := range s.held {
		if sl.client == client {
			n++
		}
	}
	return n
}

// busiest is the client holding the most slots.
func (s *streamSlots) busiest() string {
	by := map[string]int{}
	best, n := "", 0
	for sl := range s.held {
		if by[sl.client]++; by[sl.client] > n {
			best, n = sl.client, by[sl.client]
		}
	}
	return best
}

// evict ends the oldest stream of client: its handler is told at once and its writes are
// cut off after evictGrace. The slot is free from now on.
func (s *streamSlots) evict(client string) {
	var victim *slot
	for sl := range s.held {
		if sl.client == client && (victim == nil || sl.since.Before(victim.since)) {
			victim = sl
		}
	}
	if victim == nil {
		return
	}
	delete(s.held, victim)
	close(victim.evicted)
	time.AfterFunc(evictGrace, victim.cutOff)
}
