package web

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
)

func TestTimeline(t *testing.T) {
	run := demoRun(t, t.TempDir())
	tl := buildTimeline(run, 0, time.UTC, fixtureNow)
	if tl.Bars != 8 {
		t.Errorf("%d bars, want 8 (every instance that ran)", tl.Bars)
	}
	var lanes []string
	rows := map[string]tlRow{}
	for _, l := range tl.Lanes {
		lanes = append(lanes, l.Node)
		for _, r := range l.Rows {
			if r.Node != l.Node {
				t.Errorf("%s in lane %q, node %q", r.Instance, l.Node, r.Node)
			}
			rows[r.Instance] = r
		}
	}
	if fmt.Sprint(lanes) != "[ demo_cache0 demo_cache1]" {
		t.Errorf("lanes %q", lanes)
	}
	var order []string
	for _, r := range tl.Lanes[0].Rows {
		order = append(order, r.Instance)
	}
	// The lane of steps not tied to a node in the steps table's order, so a bar is found
	// where its row is.
	if want := "[provision[demo_cache] build-ci-images[python=3.11] generate-constraints[python=3.11,mode=constraints] publish-constraints verify-cache[python=3.11,platform=linux/amd64] notify-release cleanup]"; fmt.Sprint(order) != want {
		t.Errorf("lane order\n got %v\nwant %s", order, want)
	}
	amd, i386 := rows["refresh-cache[python=3.11][linux/amd64]"], rows["refresh-cache[python=3.11][linux/386]"]
	if amd.X != i386.X || amd.X == "" {
		t.Errorf("the two platforms started together but their bars start at %s and %s", amd.X, i386.X)
	}
	build := rows["build-ci-images[python=3.11]"]
	var classes []string
	for _, s := range build.Segs {
		classes = append(classes, s.Class)
	}
	if fmt.Sprint(classes) != "[attempt failed backoff attempt ok]" {
		t.Errorf("retried build segments %q", classes)
	}
	// 2 s of backoff in a 14.5 s run on a 1000-unit track.
	if build.Segs[1].W != num(2/14.5*1000) {
		t.Errorf("backoff width %s, want %s", build.Segs[1].W, num(2/14.5*1000))
	}
	verify := rows["verify-cache[python=3.11,platform=linux/amd64]"]
	if w, _ := strconv.ParseFloat(verify.W, 64); w != minBarWidth {
		t.Errorf("an instant step's bar is %v wide, want %v", w, minBarWidth)
	}
	if skipped := rows["notify-release"]; skipped.Ran || skipped.Note == "" {
		t.Errorf("skipped step: %+v", skipped)
	}
	if len(tl.Ticks) != axisTicks+1 || tl.Ticks[axisTicks].Offset != "+14.5s" {
		t.Errorf("ticks %+v", tl.Ticks)
	}
}

// TestTimelineRunning: a running run's bars end at now, and nothing is drawn past the
// track.
func TestTimelineRunning(t *testing.T) {
	now := at(100)
	run := &history.Run{ID: "r", Start: at(0), Status: history.StatusRunning, Steps: []history.Step{
		{Instance: "a", Status: history.StatusSucceeded, Start: at(0), End: at(50), Attempts: []history.Attempt{{N: 1, Start: at(0), End: at(50)}}},
		{Instance: "b", Status: history.StatusRunning, Start: at(50), Attempts: []history.Attempt{{N: 1, Start: at(50)}}},
	}}
	tl := buildTimeline(run, 0, time.UTC, now)
	b := tl.Lanes[0].Rows[1]
	if b.X != "500.00" || b.W != "500.00" || b.Segs[0].Class != "attempt running" {
		t.Errorf("running bar %+v", b)
	}
}

// bigRun is a run of n step instances over two nodes, each with a retry.
func bigRun(n int) *history.Run {
	r := &history.Run{ID: "big-20261128T030000.000Z-0000", Plan: "demo", Trigger: history.TriggerManual,
		Start: at(0), End: at(float64(n)), Status: history.StatusSucceeded}
	for i := range n {
		s := at(float64(i) / 2)
		r.Steps = append(r.Steps, history.Step{
			Instance: fmt.Sprintf("refresh-cache[python=3.%d][linux/%s]", i/2, []string{"amd64", "386"}[i%2]),
			Status:   history.StatusSucceeded, Start: s, End: s.Add(3 * time.Second), Node: fmt.Sprintf("node%d", i%2),
			Attempts: []history.Attempt{
				{N: 1, Start: s, End: s.Add(time.Second), ExitCode: 1, Error: "exit code 1: failed to export cache", Log: "/nonexistent/log"},
				{N: 2, Start: s.Add(2 * time.Second), End: s.Add(3 * time.Second), Log: "/nonexistent/log"},
			},
			Caches: []history.Cache{{Ref: fmt.Sprintf("registry/ci/python3.%d:cache-%d", i/2, i%2), After: "sha256:abc", Changed: true, Verified: true}},
		})
	}
	return r
}

// BenchmarkRunPage500 renders the page of a run with 500 step instances (1,000 attempts,
// 500 cache refs), through the handler, as the browser asks for it. Target: well under a
// second per page.
func BenchmarkRunPage500(b *testing.B) {
	src := fixture(b, 0)
	run := bigRun(500)
	src.runs = append(src.runs, run)
	h := newServer(b, src, 0).Handler()
	req := httptest.NewRequest("GET", runURL(run.ID), nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d: %s", w.Code, w.Body)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}

// BenchmarkRunsPage1000 renders the last page of a plan with 1,000 runs.
func BenchmarkRunsPage1000(b *testing.B) {
	h := newServer(b, fixture(b, 999), 50).Handler()
	req := httptest.NewRequest("GET", "/plans/demo?page=20", nil)
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d", w.Code)
		}
		io.Discard.Write(w.Body.Bytes())
	}
}
