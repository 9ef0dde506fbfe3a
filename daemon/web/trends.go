package web

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// trendRuns is how many of a plan's newest runs its trends show.
const trendRuns = 30

// A step's newest duration is flagged as grown when it is more than growthRatio times the
// median of its earlier durations in the window (at least growthMinPoints of them) and at
// least growthMinDelta longer, or when it used more than timeoutShare of its timeout: a
// build creeping toward its timeout is seen before it times out.
const (
	growthRatio     = 1.5
	growthMinPoints = 5
	growthMinDelta  = time.Minute
	timeoutShare    = 0.8
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 300.0, 48.0
	chartPad       = 3.0
)

type trends struct {
	Strip []stripCell
	Steps []stepTrend
}

// stripCell is one run of the strip, oldest first.
type stripCell struct {
	ID       string
	Status   history.Status
	Duration string
	Trigger  history.Trigger
	Params   string
}

// stepTrend is one step's duration over the strip's runs.
type stepTrend struct {
	Step           string
	Points         int
	Last, Median   string
	Timeout        string
	Flag           string // why the last duration is flagged; "" when it is not
	Line           string // SVG polyline points
	Dots           []chartDot
	TimeoutY       float64 // the timeout's line; -1 when the step has none
	W, H, Baseline float64
}

type chartDot struct {
	X, Y  float64
	Title string
}

// planTrends builds the strip of the newest trendRuns of runs (newest first) and, from
// each run's step spans (its summary's groups: one read of the run's header each, never
// its steps), every step's duration chart with its timeout marked.
func (s *Server) planTrends(ctx context.Context, plan string, runs []*history.Run, now time.Time) (*trends, error) {
	window := runs[:min(len(runs), trendRuns)]
	timeouts, err := s.cfg.Source.StepTimeouts(ctx, plan)
	if err != nil {
		return nil, fmt.Errorf("step timeouts of %s: %w", plan, err)
	}
	t := &trends{}
	durations := map[string][]time.Duration{} // per step, oldest run first; -1: not run
	var order []string
	for i := len(window) - 1; i >= 0; i-- {
		run := window[i]
		t.Strip = append(t.Strip, stripCell{ID: run.ID, Status: run.Status, Duration: duration(run.Start, run.End, now),
			Trigger: run.Trigger, Params: paramsText(run.Params)})
		var groups []history.StepGroup
		// A run gone since the listing, or without a summary, has no point. The header
		// with its groups is a RunPart of one step: the store answers none for a limit of 0.
		if part, err := s.cfg.Source.RunPart(ctx, run.ID, 0, 1); err == nil && part.Summary != nil {
			groups = part.Summary.Groups
		}
		for _, g := range groups {
			if g.Start.IsZero() || g.End.IsZero() {
				continue
			}
			if _, ok := durations[g.Step]; !ok {
				order = append(order, g.Step)
				durations[g.Step] = slices.Repeat([]time.Duration{-1}, len(t.Strip)-1)
			}
			durations[g.Step] = append(durations[g.Step], g.End.Sub(g.Start))
		}
		for step, ds := range durations { // a step this run did not run has no point
			if len(ds) < len(t.Strip) {
				durations[step] = append(ds, -1)
			}
		}
	}
	for _, step := range order {
		t.Steps = append(t.Steps, chart(step, durations[step], timeouts[step], window, len(t.Strip)))
	}
	return t, nil
}

// chart draws one step's durations (oldest first, -1 for a run without it) over n runs.
func chart(step string, ds []time.Duration, timeout time.Duration, window []*history.Run, n int) stepTrend {
	st := stepTrend{Step: step, W: chartW, H: chartH, Baseline: chartH - chartPad, TimeoutY: -1}
	top := timeout
	var ran []time.Duration
	for _, d := range ds {
		if d >= 0 {
			ran = append(ran, d)
			top = max(top, d)
		}
	}
	if top <= 0 {
		top = time.Second
	}
	y := func(d time.Duration) float64 {
		return round1(chartH - chartPad - float64(d)/float64(top)*(chartH-2*chartPad))
	}
	x := func(i int) float64 {
		if n <= 1 {
			return chartW / 2
		}
		return round1(chartPad + float64(i)/float64(n-1)*(chartW-2*chartPad))
	}
	var pts []string
	for i, d := range ds {
		if d < 0 {
			continue
		}
		px, py := x(i), y(d)
		pts = append(pts, fmt.Sprintf("%g,%g", px, py))
		run := window[len(window)-1-i]
		st.Dots = append(st.Dots, chartDot{X: px, Y: py, Title: fmt.Sprintf("%s: %s", run.ID, roundDuration(d))})
	}
	st.Line = strings.Join(pts, " ")
	st.Points = len(ran)
	if timeout > 0 {
		st.Timeout, st.TimeoutY = plan.ShortDuration(timeout), y(timeout)
	}
	if len(ran) == 0 {
		return st
	}
	last := ran[len(ran)-1]
	st.Last = roundDuration(last)
	if earlier := ran[:len(ran)-1]; len(earlier) > 0 {
		med := median(earlier)
		st.Median = roundDuration(med)
		if len(earlier) >= growthMinPoints && float64(last) > growthRatio*float64(med) && last-med >= growthMinDelta {
			st.Flag = fmt.Sprintf("grew: %s against a median of %s", roundDuration(last), roundDuration(med))
		}
	}
	if timeout > 0 && float64(last) > timeoutShare*float64(timeout) {
		st.Flag = fmt.Sprintf("near its timeout: %s of %s", roundDuration(last), roundDuration(timeout))
	}
	return st
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round1(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 1, 64), 64)
	return v
}

// paramsText is a run's params as "NAME=VALUE ...", sorted by name.
func paramsText(params map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		parts = append(parts, k+"="+params[k])
	}
	return strings.Join(parts, " ")
}
