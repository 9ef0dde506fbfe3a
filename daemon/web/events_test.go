package web

import (
	"bufio"
	"context"
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
	defer srv.Close()
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

// TestEventsFlood: streams beyond MaxStreams are refused at once, and a follower that
// leaves frees its slot and ends the daemon-side stream.
func TestEventsFlood(t *testing.T) {
	src := fixture(t, 0)
	stopped := make(chan struct{}, 4)
	src.live = func(ctx context.Context, id, step string, w control.LineWriter) error {
		w.WriteLine("started")
		<-ctx.Done() // a live run that never ends while followed
		stopped <- struct{}{}
		return nil
	}
	s, err := New(Config{Source: src, Now: func() time.Time { return fixtureNow }, MaxStreams: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	url := srv.URL + eventsURL("airflow-main-20261128T092900.000Z-ffff", "")
	var cancels []context.CancelFunc
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, err, resp)
		}
		if _, data := sse(t, bufio.NewReader(resp.Body)); data != "started" {
			t.Fatalf("stream %d: %q", i, data)
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third stream: %s, want 503 with Retry-After", resp.Status)
	}
	cancels[0]()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream of a follower that left did not end")
	}
	// Its slot is free again (the handler returns just after the source does).
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil && resp.StatusCode == 200 {
			cancel()
			break
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed: %v %v", err, resp)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancels[1]()
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
}

func (s *stepSource) RunRecord(ctx context.Context, id string) (*history.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := history.StatusRunning
	if s.done {
		st = history.StatusSucceeded
	}
	return &history.Run{ID: id, Plan: "demo", Status: history.StatusRunning, Start: fixtureNow,
		Steps: []history.Step{{Instance: "build", Status: st, Start: fixtureNow}}}, nil
}

func (s *stepSource) Logs(ctx context.Context, id, step string, follow bool, w control.LineWriter) error {
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
	defer srv.Close()
	resp, err := http.Get(srv.URL + eventsURL("demo-live", "build"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
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
