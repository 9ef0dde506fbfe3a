package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// page is what every page's layout shows.
type page struct {
	Title   string
	Version string
	Now     Time
	// Refresh is set (seconds) on a page that shows something running: without
	// JavaScript, it reloads itself that often; with it, the page follows Live instead.
	Refresh int
	// Live is the stream of run changes the page's script follows to fetch the page again
	// and swap its content in, with no reload; empty on a page that does not change with
	// the runs (a log, which follows its own stream; an error).
	Live string
}

func (s *Server) page(title string) page {
	return page{Title: title, Version: s.cfg.Version, Now: Time{T: s.cfg.Now()}, Live: runsURL}
}

type errorPage struct {
	page
	Status  int
	Message string
}

type plansPage struct {
	page
	Plans      []planRow
	Gone       []planRow // plans with runs in history that are not loaded now
	LoadErrors []control.LoadError
	PlansDir   string
	Started    Time
	LastReload Time
}

type planRow struct {
	Name, File, Schedule, TZ, Overlap string
	Next                              []Time
	Running, Queued                   string
	Last                              *history.Run
	LastEnd                           Time
	LastAge                           string
	LastSuccess                       Time
	SuccessAge                        string
	Runs                              int
}

// nextTimes is how many coming scheduled times the plans page lists.
const nextTimes = 3

func (s *Server) plansPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, err := s.cfg.Source.Status(ctx)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read daemon status: %w", err))
		return
	}
	// One listing of every run (the store decodes them all for any listing) rather than
	// one per plan.
	runs, err := s.cfg.Source.Runs(ctx, "", 0)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list runs: %w", err))
		return
	}
	byPlan := map[string][]*history.Run{}
	for _, run := range runs {
		byPlan[run.Plan] = append(byPlan[run.Plan], run)
	}
	now := s.cfg.Now()
	p := plansPage{page: s.page("Plans"), LoadErrors: st.LoadErrors, PlansDir: st.PlansDir,
		Started: Time{T: st.Started}, LastReload: Time{T: st.LastReload}}
	for _, ps := range st.Plans {
		row := planRow{Name: ps.Plan, File: ps.File, Schedule: ps.Schedule, TZ: ps.Timezone,
			Overlap: ps.Overlap, Running: ps.Running, Queued: ps.Queued}
		loc := location(ps.Timezone)
		row.Next = upcoming(ps.Schedule, loc, ps.Next, now)
		row.summarize(byPlan[ps.Plan], loc, now)
		delete(byPlan, ps.Plan)
		if row.Running != "" {
			p.Refresh = 10
		}
		p.Plans = append(p.Plans, row)
	}
	for name, runs := range byPlan {
		row := planRow{Name: name}
		row.summarize(runs, time.UTC, now)
		p.Gone = append(p.Gone, row)
	}
	slices.SortFunc(p.Gone, func(a, b planRow) int { return strings.Compare(a.Name, b.Name) })
	s.render(w, r, http.StatusOK, "plans", p)
}

// summarize fills the last run and the last success from the plan's runs, newest first.
func (row *planRow) summarize(runs []*history.Run, loc *time.Location, now time.Time) {
	row.Runs = len(runs)
	if len(runs) > 0 {
		row.Last = runs[0]
		end := runs[0].End
		if end.IsZero() {
			end = runs[0].Start
		}
		row.LastEnd, row.LastAge = Time{end, loc}, age(end, now)
	}
	for _, r := range runs {
		if r.Status == history.StatusSucceeded && !r.DryRun {
			row.LastSuccess, row.SuccessAge = Time{r.End, loc}, age(r.End, now)
			break
		}
	}
}

// upcoming is the plan's next scheduled times: the scheduler's next one, then the
// following ones from the same parser the scheduler uses.
func upcoming(spec string, loc *time.Location, next, now time.Time) []Time {
	if spec == "" {
		return nil
	}
	var out []Time
	t := now
	if !next.IsZero() {
		out = append(out, Time{next, loc})
		t = next
	}
	sched, err := plan.ParseSchedule(spec, loc)
	if err != nil {
		return out
	}
	for len(out) < nextTimes {
		t = sched.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, Time{t, loc})
	}
	return out
}

// location is a plan's time zone; an unknown or empty name is UTC (the loader has
// already rejected a bad one, so this only covers plans that are gone).
func location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// zone is the time zone of a plan as the daemon has it loaded now (UTC for a plan no
// longer loaded).
func (s *Server) zone(ctx context.Context, planName string) *time.Location {
	st, err := s.cfg.Source.Status(ctx)
	if err != nil {
		return time.UTC
	}
	for _, ps := range st.Plans {
		if ps.Plan == planName {
			return location(ps.Timezone)
		}
	}
	return time.UTC
}
