package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/refreshd/refreshd/history"
)

type runsPage struct {
	page
	Plan              string
	TZ                string
	Rows              []runRow
	Total             int
	PageN, Pages      int
	From, To          int
	PrevURL, NextURL  string
	FirstURL, LastURL string
	Trends            *trends
}

type runRow struct {
	ID       string
	Status   history.Status
	Trigger  history.Trigger
	DryRun   bool
	Start    Time
	Duration string
	Reason   string
	Steps    string
	Params   string
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("plan")
	n := 1
	if v := r.URL.Query().Get("page"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			s.fail(w, r, fmt.Errorf("%w: page %q: want a page number from 1", errInvalid, v))
			return
		}
	}
	runs, err := s.cfg.Source.Runs(ctx, name, 0)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list runs of %s: %w", name, err))
		return
	}
	loc := s.zone(ctx, name)
	size := s.cfg.PageSize
	p := runsPage{page: s.page("Runs of " + name), Plan: name, TZ: loc.String(), Total: len(runs), PageN: n,
		Pages: max(1, (len(runs)+size-1)/size)}
	if n > p.Pages {
		s.fail(w, r, fmt.Errorf("%w: plan %s has %d runs, %d pages of %d; there is no page %d", errNotFound, name, len(runs), p.Pages, size, n))
		return
	}
	from, to := (n-1)*size, min(n*size, len(runs))
	p.From, p.To = from+1, to
	now := s.cfg.Now()
	for _, run := range runs[from:to] {
		if run.Status == history.StatusRunning {
			p.Refresh = 10
		}
		p.Rows = append(p.Rows, runRow{ID: run.ID, Status: run.Status, Trigger: run.Trigger, DryRun: run.DryRun,
			Start: Time{run.Start, loc}, Duration: duration(run.Start, run.End, now), Reason: run.Reason,
			Steps: run.Summary.String(), Params: paramsText(run.Params)})
	}
	if n == 1 && len(runs) > 0 {
		if p.Trends, err = s.planTrends(ctx, name, runs, now); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	pageURL := func(k int) string { return planURL(name) + "?page=" + strconv.Itoa(k) }
	if n > 1 {
		p.PrevURL, p.FirstURL = pageURL(n-1), pageURL(1)
	}
	if n < p.Pages {
		p.NextURL, p.LastURL = pageURL(n+1), pageURL(p.Pages)
	}
	s.render(w, r, http.StatusOK, "runs", p)
}

// endOr is the end of a span, or now while it runs.
func endOr(end, now time.Time) time.Time {
	if end.IsZero() {
		return now
	}
	return end
}
