package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// runsStream is a dashboard with the given cap of streams and gap between run events,
// and the URL of its runs stream.
func runsStream(t *testing.T, streams int, gap time.Duration) (*Server, string) {
	t.Helper()
	s, err := New(Config{Source: fixture(t, 0), Now: func() time.Time { return fixtureNow }, MaxStreams: streams, LiveGap: gap})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close) // after the streams follow() opened are closed
	return s, srv.URL + runsURL
}

type runsEvent struct {
	RunEvent
	N uint64 `json:"n"`
}

func readRuns(t *testing.T, r *bufio.Reader) runsEvent {
	t.Helper()
	name, data := sse(t, r)
	if name != "runs" {
		t.Fatalf("event %q (%q), want runs", name, data)
	}
	var ev runsEvent
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		t.Fatalf("runs event %q: %v", data, err)
	}
	return ev
}

// TestRunsStreamCoalesces: a run change reaches a follower at once; a burst of changes
// within the gap reaches it as one event, the latest, after the gap; changes before the
// follower came are not sent again.
func TestRunsStreamCoalesces(t *testing.T) {
	const gap = 300 * time.Millisecond
	s, url := runsStream(t, 4, gap)
	s.RunChanged(RunEvent{Kind: RunFinished, Plan: "old", Run: "before"}) // in the page already
	r := follow(t, url)
	start := time.Now()
	s.RunChanged(RunEvent{Kind: RunStarted, Plan: "airflow/main", Run: "r1"})
	first := readRuns(t, r)
	if want := (runsEvent{RunEvent{RunStarted, "airflow/main", "r1"}, 2}); first != want {
		t.Errorf("first event %+v, want %+v", first, want)
	}
	if d := time.Since(start); d > gap {
		t.Errorf("first event after %s, want at once", d)
	}
	const burst = 1000
	for i := range burst {
		s.RunChanged(RunEvent{Kind: StepChanged, Run: fmt.Sprint("r1-", i)})
	}
	second := readRuns(t, r)
	if want := (runsEvent{RunEvent{StepChanged, "", fmt.Sprint("r1-", burst-1)}, 2 + burst}); second != want {
		t.Errorf("after a burst of %d changes: %+v, want the one event %+v", burst, second, want)
	}
	if d := time.Since(start); d < gap {
		t.Errorf("second event %s after the first, want at least the gap %s", d, gap)
	}
}

// TestRunsStreamBounded: followers that never read neither slow the daemon's changes nor
// keep a new follower out; a follower whose slot another needed is told with an end
// event. The runs stream shares its slots with the log streams.
func TestRunsStreamBounded(t *testing.T) {
	const streams = 4
	s, url := runsStream(t, streams, 10*time.Millisecond)
	host := strings.TrimPrefix(strings.TrimSuffix(url, runsURL), "http://")
	r1 := follow(t, url)
	flood(t, host, runsURL, 3*streams)
	// The first follower's slot went to the flood (one client, the oldest stream first).
	if name, data := sse(t, r1); name != "stop" || !strings.Contains(data, "needed this stream's slot") {
		t.Errorf("first follower after the flood: %q %q, want the stop event", name, data)
	}
	start := time.Now()
	const changes = 100_000
	for i := range changes {
		s.RunChanged(RunEvent{Kind: StepChanged, Run: fmt.Sprint(i)})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("%d changes took %s with %d followers not reading", changes, d, 3*streams)
	}
	r := follow(t, url)
	s.RunChanged(RunEvent{Kind: RunFinished, Plan: "p", Run: "last"})
	if ev := readRuns(t, r); ev.Run != "last" {
		t.Errorf("a follower after the flood got %+v, want the last change", ev)
	}
	s.slots.mu.Lock()
	if n := len(s.slots.held); n > streams {
		t.Errorf("%d streams hold slots, at most %d", n, streams)
	}
	s.slots.mu.Unlock()
}
