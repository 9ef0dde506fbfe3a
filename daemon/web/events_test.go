package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
)

// sse reads one server-sent event (its event name and data lines joined by "\n").
func sse(t *testing.T, r *bufio.Reader) (name, data string) {
	t.Helper()
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event stream: %v (so far %q)", err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && (name != "" || lines != nil):
			return name, strings.Join(lines, "\n")
		case line == "", strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			lines = append(lines, strings.TrimPrefix(line, "data: "))
		}
	}
}

// follow opens an event stream for the rest of the test.
func follow(t *testing.T, url string) *bufio.Reader {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return bufio.NewReader(resp.Body)
}

// TestEventsFollow: lines reach the browser as they are written, before the step ends;
// a line with a newline stays one message; the end is an "end" event.
func TestEventsFollow(t *testing.T) {
	src := fixture(t, 0)
	next := make(chan string)
	src.live = func(ctx context.Context, id, step string, w control.LineWriter) error {
		if step != "build-ci-images[python=3.9]" {
			t.Errorf("Logs asked for step %q", step)
		}
		for line := range next {
			if err := w.WriteLine(line); err != nil {
				return err
			}
		}
		return nil
	}
	srv := httptest.NewServer(newServer(t, src, 0).Handler())
	t.Cleanup(srv.Close) // after the streams follow() opened are closed
	resp, err := http.Get(srv.URL + eventsURL("airflow-main-20261128T092900.000Z-ffff", "build-ci-images[python=3.9]"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	for _, line := range []string{"#1 [internal] load build definition", "two\nlines", "<b>not markup</b>"} {
		next <- line // the stream is unbuffered: each line is read before the next is written
		if name, data := sse(t, r); name != "" || data != line {
			t.Errorf("event %q %q, want message %q", name, data, line)
		}
	}
	close(next)
	if name, data := sse(t, r); name != "end" {
		t.Errorf("after the output ended: event %q %q, want end", name, data)
	}
}

// flood opens n connections to host that each ask for path and never read a byte;
// closeAll closes them (the test's end does too).
func flood(t *testing.T, host, path string, n int) (closeAll func()) {
	t.Helper()
	var conns []net.Conn
	closeAll = func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(closeAll)
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
		conns = append(conns, c)
	}
	return closeAll
}

// TestEventsFlood: clients that open streams and never read them hold no slot for
// long: beyond MaxStreams (or a client's share) a new follower takes the slot of the
// oldest stream of the busiest client, which gets a stop event or has its writes cut
// off, and the new follower gets its lines at once. Every follower of the stream shares
// one reader of the source, which stops when the last one leaves.
func TestEventsFlood(t *testing.T) {
	src := fixture(t, 0)
	stopped := make(chan struct{}, 4)
	src.live = func(ctx context.Context, id, step string, w control.LineWriter) error {
		w.WriteLine("started")
		<-ctx.Done() // a live run that never ends while followed
		stopped <- struct{}{}
		return nil
	}
	const streams = 4
	s, err := New(Config{Source: src, Now: func() time.Time { return fixtureNow }, MaxStreams: streams})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams follow() opened are closed
	path := eventsURL("airflow-main-20261128T092900.000Z-ffff", "")
	// The flood: raw connections that send a request and never read a byte.
	host := strings.TrimPrefix(srv.URL, "http://")
	closeFlood := flood(t, host, path, 3*streams)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	resp, err := http.Get(srv.URL + path)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a follower after the flood: %v %v", err, resp)
	}
	r := bufio.NewReader(resp.Body)
	if _, data := sse(t, r); data != "started" || time.Since(start) > time.Second {
		t.Errorf("a follower after the flood: %q after %s, want started within 1s", data, time.Since(start))
	}
	src.mu.Lock()
	if src.follows != 1 {
		t.Errorf("%d readers of the source for %d followers of one stream, want 1", src.follows, 3*streams+1)
	}
	src.mu.Unlock()
	// The flood's streams were ended to make room, not left holding slots.
	s.slots.mu.Lock()
	if n := len(s.slots.held); n > streams {
		t.Errorf("%d streams hold slots, at most %d", n, streams)
	}
	s.slots.mu.Unlock()
	closeFlood()
	resp.Body.Close()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the source's stream did not end after every follower left")
	}
}

// TestEventsEvicted: a reading follower whose slot a newer one takes is told so with
// a stop event (what it followed goes on, as an end event would deny).
func TestEventsEvicted(t *testing.T) {
	src := fixture(t, 0)
	src.live = func(ctx context.Context, id, step string, w control.LineWriter) error {
		w.WriteLine("started")
		<-ctx.Done()
		return nil
	}
	s, err := New(Config{Source: src, Now: func() time.Time { return fixtureNow }, MaxStreams: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams follow() opened are closed
	url := srv.URL + eventsURL("airflow-main-20261128T092900.000Z-ffff", "")
	r1 := follow(t, url)
	if _, data := sse(t, r1); data != "started" {
		t.Fatalf("first follower: %q", data)
	}
	if _, data := sse(t, follow(t, url)); data != "started" {
		t.Fatalf("second follower: %q", data)
	}
	if name, data := sse(t, r1); name != "stop" || !strings.Contains(data, "needed this stream's slot") {
		t.Errorf("first follower after the second came: %q %q, want the stop event", name, data)
	}
}

func TestSSEData(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "data: plain\n\n",
		"":             "data: \n\n",
		"a\nb":         "data: a\ndata: b\n\n",
		"a\r\nb\rc":    "data: a\ndata: b\ndata: c\n\n",
		"trailing\n":   "data: trailing\ndata: \n\n",
		"data: nested": "data: data: nested\n\n",
	} {
		if got := sseData(in); got != want {
			t.Errorf("sseData(%q) = %q, want %q", in, got, want)
		}
	}
}

// stepSource is a run whose step "build" writes lines while it runs, then ends while the
// run goes on: the step's stream must end with the step, with every line it wrote.
type stepSource struct {
	*source
	mu    sync.Mutex
	lines []string
	done  bool
	steps int // RunStep calls
	logs  int // Logs calls with follow
}

func (s *stepSource) RunHead(ctx context.Context, id string) (*history.Run, error) {
	return &history.Run{ID: id, Plan: "demo", Status: history.StatusRunning, Start: fixtureNow}, nil
}

func (s *stepSource) RunStep(ctx context.Context, id, instance string) (int, *history.Step, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps++
	st := history.StatusRunning
	if s.done {
		st = history.StatusSucceeded
	}
	if instance != "build" {
		return -1, nil, nil
	}
	return 0, &history.Step{Instance: "build", Status: st, Start: fixtureNow}, nil
}

func (s *stepSource) Logs(ctx context.Context, id, step string, follow bool, w control.LineWriter) error {
	if follow {
		s.mu.Lock()
		s.logs++
		s.mu.Unlock()
	}
	for i := 0; ; {
		s.mu.Lock()
		n := len(s.lines)
		var line string
		if i < n {
			line = s.lines[i]
		}
		s.mu.Unlock()
		if i < n {
			if err := w.WriteLine(line); err != nil {
				return err
			}
			i++
			continue
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done(): // the run never ends in this test: only the step does
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestEventsStepEnds(t *testing.T) {
	src := &stepSource{source: fixture(t, 0), lines: []string{"one"}}
	srv := httptest.NewServer(newServer(t, src, 0).Handler())
	t.Cleanup(srv.Close) // after the streams follow() opened are closed
	r := follow(t, srv.URL+eventsURL("demo-live", "build"))
	if _, data := sse(t, r); data != "one" {
		t.Fatalf("first line %q", data)
	}
	// The step writes its last lines and ends at once: they come before the end.
	src.mu.Lock()
	src.lines = append(src.lines, "two", "three")
	src.done = true
	src.mu.Unlock()
	var got []string
	for {
		name, data := sse(t, r)
		if name == "end" {
			if data != "the step succeeded" {
				t.Errorf("end %q", data)
			}
			break
		}
		got = append(got, data)
	}
	if strings.Join(got, ",") != "two,three" {
		t.Errorf("after the first line: %q, want two,three once each", got)
	}
}

// TestEventsOneReaderPerStep: many followers of one step cost one reader of the source
// and one look at the step every stepPoll, not one per follower; all of them get every
// line and the end.
func TestEventsOneReaderPerStep(t *testing.T) {
	src := &stepSource{source: fixture(t, 0), lines: []string{"one"}}
	srv := httptest.NewServer(newServer(t, src, 0).Handler())
	t.Cleanup(srv.Close) // after the streams follow() opened are closed
	const followers = 32
	var readers []*bufio.Reader
	for i := range followers {
		r := follow(t, srv.URL+eventsURL("demo-live", "build"))
		if _, data := sse(t, r); data != "one" {
			t.Fatalf("follower %d: first line %q", i, data)
		}
		readers = append(readers, r)
	}
	time.Sleep(4 * stepPoll)
	src.mu.Lock()
	src.lines = append(src.lines, "two")
	src.done = true
	logs, steps := src.logs, src.steps
	src.mu.Unlock()
	if logs != 1 {
		t.Errorf("%d readers of the source for %d followers of one step, want 1", logs, followers)
	}
	if steps > 8 {
		t.Errorf("%d looks at the step in about %s for %d followers, want one per %s", steps, 4*stepPoll, followers, stepPoll)
	}
	for i, r := range readers {
		var got []string
		for {
			name, data := sse(t, r)
			if name == "end" {
				if data != "the step succeeded" {
					t.Errorf("follower %d: end %q", i, data)
				}
				break
			}
			got = append(got, data)
		}
		if strings.Join(got, ",") != "two" {
			t.Errorf("follower %d after the first line: %q, want two", i, got)
		}
	}
}
