package web

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
)

// TestRunPagePaged: a run of more instances than a page shows one page of them (its
// timeline bars, its rows), the table of its steps with their counts, and links to the
// other pages; a page past the end is 404, a bad one 400; the log page links back to the
// page of its step.
func TestRunPagePaged(t *testing.T) {
	src := fixture(t, 0)
	run := bigRun(25)
	run.Steps = append(run.Steps, history.Step{Instance: "publish", Status: history.StatusFailed})
	src.runs = append(src.runs, run)
	s, err := New(Config{Source: src, Now: func() time.Time { return fixtureNow }, StepsPerPage: 10, StepGroups: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	w := get(t, h, "GET", runURL(run.ID)+"?page=2")
	if w.Code != 200 {
		t.Fatalf("page 2: %d\n%s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		"26 step instances: 25 succeeded, 1 failed",
		"instances 11 to 20 (page 2 of 3)",
		`id="step-11"`, `id="step-20"`,
		`href="/runs/` + run.ID + `?page=1#steps" rel="prev"`,
		`href="/runs/` + run.ID + `?page=3#steps" rel="next"`,
		`<a href="/runs/` + run.ID + `#step-1">refresh-cache</a></th><td class="num">25</td><td>25 succeeded</td>`,
		"and 1 more steps",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page 2 lacks %q", want)
		}
	}
	for _, unwanted := range []string{`id="step-10"`, `id="step-21"`} {
		if strings.Contains(body, unwanted) {
			t.Errorf("page 2 has %q, a step of another page", unwanted)
		}
	}
	if n := strings.Count(body, `<g class="bar`); n != 10 {
		t.Errorf("page 2 has %d timeline bars, want 10", n)
	}
	last := get(t, h, "GET", runURL(run.ID)+"?page=3").Body.String()
	if !strings.Contains(last, `id="step-26"`) || !strings.Contains(last, "instances 21–26 of 26") {
		t.Errorf("page 3 lacks the last instance or its range")
	}
	for target, code := range map[string]int{
		runURL(run.ID) + "?page=4":          http.StatusNotFound,
		runURL(run.ID) + "?page=0":          http.StatusBadRequest,
		runURL(run.ID) + "?page=x":          http.StatusBadRequest,
		runURL(run.ID) + "?page=9999999999": http.StatusBadRequest,
	} {
		if got := get(t, h, "GET", target).Code; got != code {
			t.Errorf("GET %s: %d, want %d", target, got, code)
		}
	}
	inst := run.Steps[14].Instance
	logPage := get(t, h, "GET", logURL(run.ID, inst, 1)).Body.String()
	if want := fmt.Sprintf(`href="/runs/%s?page=2#step-15"`, run.ID); !strings.Contains(logPage, want) {
		t.Errorf("the log page of instance 15 lacks the link %s", want)
	}
}

// BenchmarkRunPage10000 renders the first page of a run of 10,000 instances through the
// handler: its cost is that of one page (StepsPerPage), not of the run.
func BenchmarkRunPage10000(b *testing.B) {
	src := fixture(b, 0)
	run := bigRun(10000)
	src.runs = append(src.runs, run)
	h := newServer(b, src, 0).Handler()
	b.ReportAllocs()
	for b.Loop() {
		w := get(b, h, "GET", runURL(run.ID))
		if w.Code != 200 {
			b.Fatalf("%d", w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}
