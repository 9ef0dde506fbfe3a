package web

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/refreshd/refreshd/executor/git"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
)

type runPage struct {
	page
	Run       *history.Run // the header and this page's steps
	Steps     []stepView
	StepsPage stepsPage
	TZ        string
	Start     Time
	End       Time
	Scheduled Time
	Duration  string
	Running   bool
	Timeline  timeline
	Caches    []cacheView
	Publishes []publishView
	Warnings  []warningView
	Extra     []field
	Params    []pair
	Vars      []pair
}

// stepsPage says which of a run's step instances a page shows: a run of more than one page
// (StepsPerPage) gets the table of its steps with their counts, links to the pages, and
// its timeline, steps, cache tags, constraints and warnings of the instances shown.
type stepsPage struct {
	Total             int
	From, To          int // 1-based, inclusive
	PageN, Pages      int
	PrevURL, NextURL  string
	FirstURL, LastURL string
	Counts            string
	Groups            []groupView
	MoreGroups        int // groups not listed (StepGroups)
}

type groupView struct {
	Step   string
	Total  int
	Counts string
	URL    string // the page and anchor of its first instance
}

type stepView struct {
	Anchor   string
	Instance string
	Status   history.Status
	Reason   string
	Node     string
	Start    Time
	Duration string
	Attempts []attemptView
	Warnings []string
	Extra    []field
	LiveURL  string // the live log page while the step runs
}

type attemptView struct {
	N        int
	Start    Time
	Duration string
	Outcome  string
	Class    string // ok, failed or running (outcomeClass)
	Error    string
	Backoff  string // the wait before this attempt
	LogURL   string
}

// cacheView is one cache ref as the run left it: a ref recorded by several steps (the
// build that pushed it, the check that verified it) is one row.
type cacheView struct {
	Ref      string
	Before   string
	After    string
	Changed  bool
	Verified bool
	Steps    []string
}

type publishView struct {
	Step       string
	Anchor     string
	Publish    *history.Publish
	Changes    []changeView
	HistoryURL string // the constraint history of the branch
}

type changeView struct {
	history.PackageChange
	Kind git.Kind
}

type warningView struct {
	Step, Anchor, Text string
}

// Fields of the run and step records that have a view of their own, or (process: a process
// group kept for crash recovery) none worth showing; any other field (new ones such as
// params or the source commit) is listed as it is.
var (
	runFields  = []string{"id", "plan", "trigger", "scheduled", "start", "end", "status", "reason", "warnings", "steps", "dry_run", "process", "source", "params", "vars", "step_summary"}
	stepFields = []string{"instance", "status", "reason", "start", "end", "attempts", "node", "caches", "publish", "warnings"}
)

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	n := 1
	if v := r.URL.Query().Get("page"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > math.MaxInt32/s.cfg.StepsPerPage {
			s.fail(w, r, fmt.Errorf("%w: page %q: want a page number from 1", errInvalid, v))
			return
		}
	}
	size := s.cfg.StepsPerPage
	run, err := s.cfg.Source.RunPart(ctx, id, (n-1)*size, size)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read run %s: %w", id, err))
		return
	}
	total := 0
	if run.Summary != nil {
		total = run.Summary.Total
	}
	if pages := max(1, (total+size-1)/size); n > pages {
		s.fail(w, r, fmt.Errorf("%w: run %s has %d step instances, %d pages of %d; there is no page %d", errNotFound, id, total, pages, size, n))
		return
	}
	p := s.buildRunPage(run, (n-1)*size, s.zone(ctx, run.Plan))
	s.render(w, r, http.StatusOK, "run", p)
}

// runStepURL is the link to step instance i of a run: its anchor on the page that shows it.
func (s *Server) runStepURL(id string, i int) string {
	u := runURL(id)
	if k := i/s.cfg.StepsPerPage + 1; k > 1 {
		u += "?page=" + strconv.Itoa(k)
	}
	return u + "#" + stepAnchor(i)
}

// stepsPageOf says which steps run (a RunPart from offset) shows, with the links to the
// others and the table of its steps when it has more than one page.
func (s *Server) stepsPageOf(run *history.Run, offset int) stepsPage {
	size := s.cfg.StepsPerPage
	sp := stepsPage{Total: len(run.Steps), From: offset + 1, To: offset + len(run.Steps), PageN: offset/size + 1}
	if run.Summary != nil {
		sp.Total, sp.Counts = run.Summary.Total, run.Summary.String()
	}
	sp.Pages = max(1, (sp.Total+size-1)/size)
	if sp.Pages == 1 {
		return sp
	}
	pageURL := func(k int) string { return runURL(run.ID) + "?page=" + strconv.Itoa(k) + "#steps" }
	if sp.PageN > 1 {
		sp.PrevURL, sp.FirstURL = pageURL(sp.PageN-1), pageURL(1)
	}
	if sp.PageN < sp.Pages {
		sp.NextURL, sp.LastURL = pageURL(sp.PageN+1), pageURL(sp.Pages)
	}
	for i, g := range run.Summary.Groups {
		if i == s.cfg.StepGroups {
			sp.MoreGroups = len(run.Summary.Groups) - i
			break
		}
		sp.Groups = append(sp.Groups, groupView{Step: g.Step, Total: g.Total,
			Counts: (&history.StepSummary{Counts: g.Counts}).String(), URL: s.runStepURL(run.ID, g.First)})
	}
	return sp
}

// buildRunPage is the page of run, a RunPart whose Steps start at index offset.
func (s *Server) buildRunPage(run *history.Run, offset int, loc *time.Location) runPage {
	now := s.cfg.Now()
	p := runPage{page: s.page("Run " + run.ID), Run: run, TZ: loc.String(),
		Start: Time{run.Start, loc}, End: Time{run.End, loc}, Scheduled: Time{run.Scheduled, loc},
		Duration: duration(run.Start, run.End, now), Running: run.Status == history.StatusRunning,
		Timeline: buildTimeline(run, offset, loc, now), Extra: extras(recordOnly(*run), runFields...),
		StepsPage: s.stepsPageOf(run, offset)}
	if p.Running {
		p.Refresh = 5
	}
	for _, k := range slices.Sorted(maps.Keys(run.Params)) {
		p.Params = append(p.Params, pair{k, run.Params[k]})
	}
	for _, v := range run.Vars {
		val := v.Value
		if v.List || len(v.Values) > 0 {
			val = "[" + strings.Join(v.Values, ", ") + "]"
		}
		p.Vars = append(p.Vars, pair{v.Name + " (from " + v.Step + ")", val})
	}
	for _, w := range run.Warnings {
		p.Warnings = append(p.Warnings, warningView{Text: w})
	}
	caches := map[string]int{} // ref -> index in p.Caches
	for i, st := range run.Steps {
		v := stepViewOf(run.ID, &st, offset+i, loc, now)
		for _, c := range st.Caches {
			p.addCache(caches, st.Instance, c)
		}
		if st.Publish != nil {
			p.Publishes = append(p.Publishes, publishViewOf(&st, v.Anchor))
		}
		for _, w := range st.Warnings {
			p.Warnings = append(p.Warnings, warningView{Step: st.Instance, Anchor: v.Anchor, Text: w})
		}
		p.Steps = append(p.Steps, v)
	}
	return p
}

// stepViewOf is the row of step st, instance i of run id, in the steps table.
func stepViewOf(id string, st *history.Step, i int, loc *time.Location, now time.Time) stepView {
	v := stepView{Anchor: stepAnchor(i), Instance: st.Instance, Status: st.Status, Reason: st.Reason, Node: st.Node,
		Start: Time{st.Start, loc}, Duration: duration(st.Start, st.End, now), Warnings: st.Warnings,
		Extra: extras(stepOnly(*st), stepFields...)}
	if st.Status == history.StatusRunning && len(st.Attempts) > 0 {
		v.LiveURL = logURL(id, st.Instance, st.Attempts[len(st.Attempts)-1].N)
	}
	for j, a := range st.Attempts {
		av := attemptView{N: a.N, Start: Time{a.Start, loc}, Duration: duration(a.Start, a.End, now),
			Outcome: report.AttemptOutcome(a), Class: outcomeClass(a), Error: a.Error}
		if av.Error == av.Outcome {
			av.Error = ""
		}
		if j > 0 && !st.Attempts[j-1].End.IsZero() && a.Start.After(st.Attempts[j-1].End) {
			av.Backoff = roundDuration(a.Start.Sub(st.Attempts[j-1].End))
		}
		if a.Log != "" {
			av.LogURL = logURL(id, st.Instance, a.N)
		}
		v.Attempts = append(v.Attempts, av)
	}
	// A failed step's reason quotes its last attempt ("attempt 3 of 3: exit code 1:
	// ERROR ..."), which the attempts list shows already: said once, not twice.
	if n := len(st.Attempts); n > 0 {
		last := st.Attempts[n-1]
		if last.Error != "" && strings.Contains(st.Reason, last.Error) || strings.HasSuffix(st.Reason, report.AttemptOutcome(last)) {
			v.Reason = ""
		}
	}
	return v
}

// addCache adds what step instance recorded of cache ref c to the page's cache table, in
// the row of c's ref (caches maps a ref to its row).
func (p *runPage) addCache(caches map[string]int, instance string, c history.Cache) {
	k, ok := caches[c.Ref]
	if !ok {
		k = len(p.Caches)
		caches[c.Ref] = k
		p.Caches = append(p.Caches, cacheView{Ref: c.Ref, Before: c.Before})
	}
	cv := &p.Caches[k]
	if c.After != "" {
		cv.After = c.After
	}
	cv.Changed = cv.Changed || c.Changed
	cv.Verified = c.Verified // as the last step in graph order saw it (history.Run.CacheTags)
	cv.Steps = append(cv.Steps, instance)
}

// publishViewOf is what publish step st (at anchor) did, its changes classified.
func publishViewOf(st *history.Step, anchor string) publishView {
	pv := publishView{Step: st.Instance, Anchor: anchor, Publish: st.Publish,
		HistoryURL: "/constraints?" + url.Values{"branch": {st.Publish.Branch}}.Encode()}
	for _, c := range st.Publish.Changes {
		pv.Changes = append(pv.Changes, changeView{PackageChange: c, Kind: git.ChangeKind(c.Old, c.New)})
	}
	return pv
}

// recordOnly and stepOnly drop what has a view of its own before extras encodes a record to
// find its other fields: a run of 500 steps is then not encoded 501 times.
func recordOnly(r history.Run) history.Run {
	r.Steps, r.Warnings, r.Summary = nil, nil, nil
	return r
}

func stepOnly(s history.Step) history.Step {
	s.Attempts, s.Caches, s.Publish, s.Warnings = nil, nil, nil, nil
	return s
}
