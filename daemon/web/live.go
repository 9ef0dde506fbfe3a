package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// RunEvent is a change the dashboard's pages may show: a run started, one of its steps
// changed, or it finished.
type RunEvent struct {
	Kind string `json:"kind"` // RunStarted, StepChanged or RunFinished
	Plan string `json:"plan,omitempty"`
	Run  string `json:"run"`
}

// The kinds of RunEvent.
const (
	RunStarted  = "run-started"
	StepChanged = "step-changed"
	RunFinished = "run-finished"
)

// runsScope is the events query (/events?scope=runs) of the stream of run changes every
// page but a log follows: on an event, its script fetches the page again and swaps its
// content in.
const runsScope = "runs"

// runsURL is the stream a page's script follows.
const runsURL = "/events?scope=" + runsScope

// changes is the latest run change and a count of them, which the daemon's observer
// bumps (never waiting: a lock held for an assignment and a close) and every follower of
// the runs stream reads when woken. A follower sends at most one event per
// Config.LiveGap, the latest change, so a run of 10,000 steps changing at once costs each
// follower one event and each page one fetch per gap, and a follower that reads slowly
// only delays itself (its writes time out after writeTimeout and it is dropped).
type changes struct {
	mu   sync.Mutex
	n    uint64
	last RunEvent
	wake chan struct{} // closed and replaced on each change
}

func newChanges() *changes { return &changes{wake: make(chan struct{})} }

func (c *changes) bump(ev RunEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.last = ev
	close(c.wake)
	c.wake = make(chan struct{})
}

// current is the count of changes, the latest one, and a channel closed on the next.
func (c *changes) current() (uint64, RunEvent, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.last, c.wake
}

// RunChanged tells the pages' followers that a run started, changed or finished. It
// never blocks, whatever the followers do; the daemon's observer calls it.
func (s *Server) RunChanged(ev RunEvent) { s.changes.bump(ev) }

// runEvents streams run changes as server-sent "runs" events (data: the latest change, as
// JSON, with the count of changes so far), coalesced to one per Config.LiveGap. It takes a
// slot like a log stream, under the same limits, and ends with a "stop" event when another
// follower needs the slot.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The changes before the stream's headers went out are in the page that opened it.
	seen, _, _ := s.changes.current()
	sw := startEvents(w)
	sl := s.slots.take(r, sw.rc)
	defer s.slots.release(sl)
	if err := sw.send(": following run changes\n\n"); err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go sw.keepAlive(done)
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		n, last, wake := s.changes.current()
		if n != seen {
			data, _ := json.Marshal(struct {
				RunEvent
				N uint64 `json:"n"`
			}{last, n})
			if sw.event("runs", string(data)) != nil {
				return // the follower left, or stopped reading
			}
			seen = n
			// What changes during the gap is sent as one event after it.
			gap.Reset(s.cfg.LiveGap)
			select {
			case <-gap.C:
				continue
			case <-sl.evicted:
				s.evicted(sw)
				return
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-wake:
		case <-sl.evicted:
			s.evicted(sw)
			return
		case <-ctx.Done():
			return
		}
	}
}

// evicted tells a follower that its stream is dropped for another's (a "stop" event: what
// it followed has not ended, as an "end" event would say).
func (s *Server) evicted(sw *sseWriter) {
	sw.event("stop", fmt.Sprintf("another follower needed this stream's slot (%d at most, %d per client); reload to follow again", s.slots.max, s.slots.perClient))
}

// startEvents answers the headers of a server-sent events stream.
func startEvents(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// keepAlive sends a comment every heartbeat until done is closed, so proxies and the
// browser see the connection alive.
func (s *sseWriter) keepAlive(done <-chan struct{}) {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.send(": keep-alive\n\n")
		case <-done:
			return
		}
	}
}
