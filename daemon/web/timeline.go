package web

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/report"
)

// The timeline is a Gantt chart of a run: one row per step instance, grouped in lanes by
// the builder node that built it, so platforms built in parallel on their own nodes show
// as overlapping bars in different lanes. Each row is a small SVG stretched to the page's
// width (preserveAspectRatio none, width timelineWidth in its own units), with one bar
// spanning the instance and, inside it, one segment per attempt and one per backoff wait
// between attempts. Positions are computed here, so it needs no script and no inline
// style (the Content-Security-Policy allows neither).
type timeline struct {
	Start, End Time
	Lanes      []lane
	Ticks      []tick
	Bars       int // instances that ran (have a bar)
}

type lane struct {
	Node  string // "" for steps no node was recorded for
	Label string
	Rows  []tlRow
}

type tlRow struct {
	Instance string
	Anchor   string
	Status   history.Status
	Node     string
	Ran      bool
	Start    string // RFC 3339 UTC, for data attributes (tests and scripts read them)
	End      string
	X, W     string
	Segs     []seg
	Label    string // accessible description of the row
	Note     string // why a row without a bar has none
	began    time.Time
}

type seg struct {
	Class string
	X, W  string
	Title string
}

type tick struct {
	Offset string // "+1m30s"
	At     Time
}

const (
	timelineWidth = 1000.0
	minBarWidth   = 2.0 // an instant step (0 s) is still visible and hoverable
	axisTicks     = 4   // intervals on the axis
)

// buildTimeline charts r's steps, which are the run's from index offset on (one page of
// them), on the span of the run and of these steps.
func buildTimeline(r *history.Run, offset int, loc *time.Location, now time.Time) timeline {
	start, end := r.Start, endOr(r.End, now)
	for _, s := range r.Steps {
		if !s.Start.IsZero() && (start.IsZero() || s.Start.Before(start)) {
			start = s.Start
		}
		if !s.Start.IsZero() {
			if e := endOr(s.End, now); e.After(end) {
				end = e
			}
		}
	}
	total := end.Sub(start)
	if total <= 0 {
		total = time.Millisecond
	}
	span := scale{start, total}.span

	tl := timeline{Start: Time{start, loc}, End: Time{end, loc}}
	for i := 0; i <= axisTicks; i++ {
		off := total * time.Duration(i) / axisTicks
		tl.Ticks = append(tl.Ticks, tick{Offset: "+" + roundDuration(off), At: Time{start.Add(off), loc}})
	}
	lanes := map[string]*lane{}
	for i, s := range r.Steps {
		row := tlRow{Instance: s.Instance, Anchor: stepAnchor(offset + i), Status: s.Status, Node: s.Node}
		if s.Start.IsZero() {
			row.Note = string(s.Status)
			if s.Reason != "" {
				row.Note += ": " + s.Reason
			}
			row.Label = s.Instance + ": " + row.Note
		} else {
			row.Ran = true
			tl.Bars++
			e := endOr(s.End, now)
			row.Start, row.End, row.began = iso(s.Start), iso(e), s.Start
			row.X, row.W = span(s.Start, e)
			var desc []string
			row.Segs, desc = attemptSegments(s, span, loc, now)
			row.Label = fmt.Sprintf("%s: %s, from %s to %s", s.Instance, s.Status,
				"+"+roundDuration(s.Start.Sub(start)), "+"+roundDuration(e.Sub(start)))
			if s.Node != "" {
				row.Label += " on node " + s.Node
			}
			if len(desc) > 0 {
				row.Label += "; " + strings.Join(desc, ", ")
			}
		}
		l := lanes[s.Node]
		if l == nil {
			l = &lane{Node: s.Node, Label: "node " + s.Node}
			if s.Node == "" {
				// Not "without a builder": a run step may use one whose node buildx picks.
				l.Label = "steps not tied to a node"
			}
			lanes[s.Node] = l
		}
		l.Rows = append(l.Rows, row)
	}
	for _, l := range lanes {
		if l.Node == "" {
			// Steps without a builder keep the steps table's order, so a bar is found
			// where its row is.
			tl.Lanes = append(tl.Lanes, *l)
			continue
		}
		// A node's rows by start time, rows without a bar last; SortStableFunc keeps the
		// graph order among equals.
		slices.SortStableFunc(l.Rows, func(a, b tlRow) int {
			if a.Ran != b.Ran {
				if a.Ran {
					return -1
				}
				return 1
			}
			return a.began.Compare(b.began)
		})
		tl.Lanes = append(tl.Lanes, *l)
	}
	// The lane of steps without a node (set-up, constraints, checks) first, then the nodes
	// by name.
	slices.SortFunc(tl.Lanes, func(a, b lane) int { return cmp.Compare(a.Node, b.Node) })
	return tl
}

// scale places times of a run on the timeline: start at 0, start+total at timelineWidth.
type scale struct {
	start time.Time
	total time.Duration
}

func (sc scale) x(t time.Time) float64 {
	return min(max(float64(t.Sub(sc.start))/float64(sc.total)*timelineWidth, 0), timelineWidth)
}

// span is the x and width of a bar from a to b, at least minBarWidth wide and inside the
// timeline.
func (sc scale) span(a, b time.Time) (x, w string) {
	x0 := sc.x(a)
	w0 := max(sc.x(b)-x0, minBarWidth)
	if x0+w0 > timelineWidth {
		x0 = timelineWidth - w0
	}
	return num(x0), num(w0)
}

// attemptSegments are the parts of a step's bar: each attempt, and the backoff waited
// between two, with a phrase for each for the row's label.
func attemptSegments(s history.Step, span func(a, b time.Time) (string, string), loc *time.Location, now time.Time) (segs []seg, desc []string) {
	for j, a := range s.Attempts {
		if j > 0 {
			prev := endOr(s.Attempts[j-1].End, now)
			if gap := a.Start.Sub(prev); gap > 0 {
				sg := seg{Class: "backoff", Title: fmt.Sprintf("waited %s (backoff) before attempt %d", roundDuration(gap), a.N)}
				sg.X, sg.W = span(prev, a.Start)
				segs = append(segs, sg)
				desc = append(desc, "backoff "+roundDuration(gap))
			}
		}
		if a.Start.IsZero() {
			continue
		}
		outcome := report.AttemptOutcome(a)
		sg := seg{Class: "attempt " + outcomeClass(a),
			Title: fmt.Sprintf("%s attempt %d: %s, %s to %s (%s)", s.Instance, a.N, outcome,
				Time{a.Start, loc}.Clock(), Time{endOr(a.End, now), loc}.Clock(), duration(a.Start, a.End, now))}
		sg.X, sg.W = span(a.Start, endOr(a.End, now))
		segs = append(segs, sg)
		desc = append(desc, fmt.Sprintf("attempt %d %s %s", a.N, outcome, duration(a.Start, a.End, now)))
	}
	return segs, desc
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func stepAnchor(i int) string { return "step-" + strconv.Itoa(i+1) }

func outcomeClass(a history.Attempt) string {
	switch {
	case a.End.IsZero():
		return "running"
	case a.ExitCode == 0 && a.Signal == "" && a.Error == "":
		return "ok"
	}
	return "failed"
}
