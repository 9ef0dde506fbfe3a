package web

import (
	"context"
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
	Anchor    string
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
	run, err := s.cfg.Source.RunRecord(ctx, id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read run %s: %w", id, err))
		return
	}
	idx, st := findStep(run, step)
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
		Anchor: stepAnchor(idx), N: a.N, Outcome: report.AttemptOutcome(a), Start: Time{a.Start, loc},
		Duration: duration(a.Start, a.End, now), RawURL: logURL(id, step, a.N) + "&raw=1"}
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

func findStep(run *history.Run, instance string) (int, *history.Step) {
	for i := range run.Steps {
		if run.Steps[i].Instance == instance {
			return i, &run.Steps[i]
		}
	}
	return -1, nil
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
// the run's output has ended, after which the script closes the stream (a plain
// EventSource would reconnect and replay it).
const (
	heartbeat    = 15 * time.Second
	writeTimeout = 30 * time.Second // a follower that stops reading is dropped, not waited for
)

// events streams a running step's output (or a whole run's, without step) as server-sent
// events, from the daemon's live buffer; for a run that has ended it sends the log files'
// lines and ends.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	id, step := q.Get("run"), q.Get("step")
	if _, err := s.cfg.Source.RunRecord(ctx, id); err != nil && !errors.Is(err, control.ErrConflict) {
		// A conflict is a run triggered but not started yet: its stream exists already.
		s.fail(w, r, fmt.Errorf("follow run %s: %w", id, err))
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("too many live log streams (%d); try again later", cap(s.streams)), http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	// Each write sets its own deadline; clear it for whatever the connection serves next.
	defer sw.rc.SetWriteDeadline(time.Time{})
	if err := sw.send(": following " + id + " " + step + "\n\n"); err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				sw.send(": keep-alive\n\n")
			case <-done:
				return
			}
		}
	}()
	// The daemon's stream of a run ends with the run. A step's ends with the step: a
	// watcher stops following once the record says the step is no longer running, and the
	// lines buffered until then are sent from the daemon's buffer without following.
	follow, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	ended := make(chan string, 1)
	if step != "" {
		go s.watchStep(follow, id, step, ended, stopFollow)
	}
	err := s.cfg.Source.Logs(follow, id, step, true, sw)
	end := "the run's output has ended"
	if ctx.Err() == nil && follow.Err() != nil && !errors.Is(err, errGone) {
		end = <-ended
		err = s.cfg.Source.Logs(ctx, id, step, false, &skipLines{w: sw, skip: sw.lines})
	}
	switch {
	case ctx.Err() != nil || errors.Is(err, errGone):
		return // the follower left
	case err != nil:
		s.log.Warn("live log stream", "run", id, "step", step, "err", err)
		sw.event("end", "the stream failed: "+err.Error())
		return
	}
	sw.event("end", end)
}

// stepPoll is how often a followed step's record is read to see whether it has ended.
const stepPoll = 500 * time.Millisecond

// watchStep reads the run's record every stepPoll until step is no longer running (or ctx
// ends), then says how it ended and calls stop.
func (s *Server) watchStep(ctx context.Context, id, step string, ended chan<- string, stop func()) {
	t := time.NewTicker(stepPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		run, err := s.cfg.Source.RunRecord(ctx, id)
		if err != nil {
			continue // not started yet, or a passing error: the run's end still ends the stream
		}
		if _, st := findStep(run, step); st != nil && st.Status != history.StatusRunning && st.Status != history.StatusWaiting {
			ended <- "the step " + string(st.Status)
			stop()
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
