package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
)

type logPage struct {
	page
	RunID     string
	Plan      string
	Step      string
	RunLink   string // the step on its run's page
	N         int
	Attempts  []attemptLink
	Outcome   string
	Start     Time
	Duration  string
	Text      string
	Cut       int64 // bytes left out at the start (the page shows the end of a long log)
	ReadErr   string
	RawURL    string
	EventsURL string // set while the step runs: the script follows its output live
}

type attemptLink struct {
	N       int
	URL     string
	Current bool
}

// logPage shows one attempt's log file: the whole output of a past attempt, or what a
// running one has written so far, followed live by the script (server-sent events from
// /events). ?raw=1 answers the whole file as text.
func (s *Server) logPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	id, step := q.Get("run"), q.Get("step")
	run, err := s.cfg.Source.RunHead(ctx, id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read run %s: %w", id, err))
		return
	}
	idx, st, err := s.cfg.Source.RunStep(ctx, id, step)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read run %s: %w", id, err))
		return
	}
	if st == nil {
		s.fail(w, r, fmt.Errorf("%w: run %s has no step instance %q", errNotFound, id, step))
		return
	}
	if len(st.Attempts) == 0 {
		s.fail(w, r, fmt.Errorf("%w: step %s of run %s has no attempt (%s)", errNotFound, step, id, st.Status))
		return
	}
	a := st.Attempts[len(st.Attempts)-1]
	if v := q.Get("attempt"); v != "" {
		n, err := strconv.Atoi(v)
		found := false
		for _, at := range st.Attempts {
			if err == nil && at.N == n {
				a, found = at, true
			}
		}
		if !found {
			s.fail(w, r, fmt.Errorf("%w: step %s of run %s has no attempt %q (it has %d)", errNotFound, step, id, v, len(st.Attempts)))
			return
		}
	}
	if q.Get("raw") == "1" {
		s.rawLog(w, r, a)
		return
	}
	loc := s.zone(ctx, run.Plan)
	now := s.cfg.Now()
	p := logPage{page: s.page(fmt.Sprintf("%s attempt %d", step, a.N)), RunID: id, Plan: run.Plan, Step: step,
		RunLink: s.runStepURL(id, idx), N: a.N, Outcome: report.AttemptOutcome(a), Start: Time{a.Start, loc},
		Duration: duration(a.Start, a.End, now), RawURL: logURL(id, step, a.N) + "&raw=1"}
	p.Live = "" // a log page follows the step's own stream
	for _, at := range st.Attempts {
		p.Attempts = append(p.Attempts, attemptLink{N: at.N, URL: logURL(id, step, at.N), Current: at.N == a.N})
	}
	if a.End.IsZero() && run.Status == history.StatusRunning {
		p.EventsURL = eventsURL(id, step)
	}
	p.Text, p.Cut, err = tail(a.Log, s.cfg.LogBytes)
	if err != nil {
		p.ReadErr = err.Error()
	}
	s.render(w, r, http.StatusOK, "log", p)
}

// tail reads at most limit bytes from the end of the log at path, starting at a line
// boundary, and says how many bytes it left out.
func tail(path string, limit int64) (string, int64, error) {
	if path == "" {
		return "", 0, errors.New("this attempt has no log file (it ran no process)")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("read log: %w", err)
	}
	var cut int64
	if fi.Size() > limit {
		cut = fi.Size() - limit
		if _, err := f.Seek(cut, io.SeekStart); err != nil {
			return "", 0, fmt.Errorf("read log: %w", err)
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return "", 0, fmt.Errorf("read log: %w", err)
	}
	if cut > 0 {
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			cut += int64(i + 1)
			data = data[i+1:]
		}
	}
	return string(data), cut, nil
}

func (s *Server) rawLog(w http.ResponseWriter, r *http.Request, a history.Attempt) {
	if a.Log == "" {
		s.fail(w, r, fmt.Errorf("%w: attempt %d ran no process and has no log", errNotFound, a.N))
		return
	}
	f, err := os.Open(a.Log)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: read log of attempt %d: %w", errNotFound, a.N, err))
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.Copy(w, f)
}

// Server-sent events of a live log: every line as a message, a comment every
// heartbeat so proxies and the browser see the connection alive, and an "end" event when
// the run's output has ended, or a "stop" event when the follower is dropped while it goes
// on (it fell behind, or another follower needed its slot), after either of which the
// script closes the stream (a plain EventSource would reconnect and replay it).
const (
	heartbeat    = 15 * time.Second
	writeTimeout = 10 * time.Second // a follower that stops reading is dropped, not waited for
)

// events streams a running step's output (or a whole run's, without step) as server-sent
// events, from the feed of that step (one reader for all its followers); for a run that
// has ended it sends the log files' lines and ends. A follower that falls behind what the
// feed keeps, or whose slot another follower needed, gets a stop event saying so.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if q.Get("scope") == runsScope {
		s.runEvents(w, r)
		return
	}
	id, step := q.Get("run"), q.Get("step")
	if _, err := s.cfg.Source.RunHead(ctx, id); err != nil && !errors.Is(err, control.ErrConflict) {
		// A conflict is a run triggered but not started yet: its stream exists already.
		s.fail(w, r, fmt.Errorf("follow run %s: %w", id, err))
		return
	}
	sw := startEvents(w)
	// Subscribe before taking a slot: a stream evicted to make room then never leaves
	// the feed without followers (which would stop and restart its reader).
	f := s.feeds.subscribe(id, step)
	defer s.feeds.unsubscribe(f)
	sl := s.slots.take(r, sw.rc)
	defer s.slots.release(sl)
	if err := sw.send(": following " + id + " " + step + "\n\n"); err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go sw.keepAlive(done)
	for from := 0; ; {
		c := f.read(from)
		if c.skipped > 0 {
			if from > 0 {
				sw.event("stop", "this follower "+errBehind.Error()+"; reload to follow again")
				return
			}
			// A new follower of a long stream starts at the oldest line the feed keeps.
			if sw.WriteLine(fmt.Sprintf("(%d lines before these are not shown here; see the attempt's log)", c.skipped)) != nil {
				return
			}
		}
		for _, line := range c.lines {
			if sw.WriteLine(line) != nil {
				return // the follower left, or stopped reading
			}
		}
		from = c.next
		if c.ended {
			sw.event("end", c.end)
			return
		}
		select {
		case <-c.more:
		case <-sl.evicted:
			s.evicted(sw)
			return
		case <-ctx.Done():
			return
		}
	}
}

// skipLines drops the first skip lines written to it: the lines a follower already has
// when the rest of a step's output is sent again from the start of the buffer.
type skipLines struct {
	w    control.LineWriter
	skip int
}

func (s *skipLines) WriteLine(line string) error {
	if s.skip > 0 {
		s.skip--
		return nil
	}
	return s.w.WriteLine(line)
}

var errGone = errors.New("follower gone")

// sseWriter writes lines as server-sent events, each flushed at once; writes from the
// log stream and the heartbeat are serialised.
type sseWriter struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	failed bool
	lines  int // lines written (WriteLine), for skipLines
}

func (s *sseWriter) send(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return errGone
	}
	s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := io.WriteString(s.w, text); err != nil {
		s.failed = true
		return errGone
	}
	if err := s.rc.Flush(); err != nil {
		s.failed = true
		return errGone
	}
	return nil
}

// WriteLine implements control.LineWriter. A line holding a carriage return or a newline
// (it should not) is sent as several data fields, which the browser joins with "\n".
func (s *sseWriter) WriteLine(line string) error {
	if err := s.send(sseData(line)); err != nil {
		return err
	}
	s.lines++ // only Logs calls WriteLine, one call at a time
	return nil
}

func (s *sseWriter) event(name, data string) error {
	return s.send("event: " + name + "\n" + sseData(data))
}

func sseData(text string) string {
	var b strings.Builder
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	for _, l := range strings.Split(text, "\n") {
		b.WriteString("data: ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.String()
}
