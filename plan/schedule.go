package plan

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/refreshd/refreshd/internal/wallcron"
)

// scheduleWant is what a valid schedule looks like, for every error about one.
const scheduleWant = `want 5 cron fields ("0 2 * * *"), 6 with seconds, or a descriptor like @nightly or @every 6h`

// ParseSchedule parses a plan's schedule in loc (UTC when nil). It is the one parser of
// schedules: validate and the daemon's scheduler both use it, so they agree exactly.
//
// It accepts robfig/cron v3 specs: 5 fields, an optional leading seconds field, and
// descriptors (@nightly, @daily, @every 1h). It rejects what robfig/cron would accept with
// a surprise:
//   - a CRON_TZ= or TZ= prefix, which would silently override the plan's timezone:;
//   - @every under one second or not a whole number of seconds, which robfig/cron
//     silently rounds (to 1 s, or down to the second), so "@every -1s" would fire every second;
//   - a spec that never fires ("0 0 30 2 *", February 30).
//
// robfig/cron panics on some malformed specs (robfig/cron#470, robfig/cron#554); parsing runs inside a
// recover so that a bad plan never crashes the daemon, and the error says what is valid
// rather than repeating the runtime error.
//
// Offset changes: cron specs are matched against loc's wall clock by wallcron, not by
// robfig/cron's Next (which goes wrong on 30-minute and midnight changes). A wall-clock
// time in a forward gap does not exist that day: it fires once at the first instant after
// the jump, as cronie does (America/New_York "30 2 * * *" runs at 03:00 EDT on
// 2027-03-14), unless the spec fires every hour; one in a repeated period fires once, at
// its first occurrence (EDT 01:30 on 2027-11-07, not EST 01:30). @every is a fixed
// interval of elapsed time, whatever the wall clock does.
func ParseSchedule(spec string, loc *time.Location) (sched cron.Schedule, err error) {
	if loc == nil {
		loc = time.UTC
	}
	spec = strings.TrimSpace(spec)
	if spec == "@nightly" { // what operators say; robfig/cron calls it @daily
		spec = "@daily"
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		zone, rest, _ := strings.Cut(spec, " ")
		_, zone, _ = strings.Cut(zone, "=")
		return nil, fmt.Errorf("bad schedule %q: a TZ= or CRON_TZ= prefix would override the plan's timezone; set the zone with timezone: instead: write schedule: %s, timezone: %s", spec, strconv.Quote(strings.TrimSpace(rest)), strconv.Quote(zone))
	}
	if arg, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(arg))
		if err != nil {
			return nil, fmt.Errorf("bad schedule %q: @every wants a duration like 30s, 15m or 6h", spec)
		}
		if d < time.Second || d%time.Second != 0 {
			return nil, fmt.Errorf("bad schedule %q: @every wants a whole number of seconds, at least 1s", spec)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("bad schedule %q: not a valid cron spec; %s", spec, scheduleWant)
		}
	}()
	parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err = parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("bad schedule %q: %v; %s", spec, err, scheduleWant)
	}
	if ss, ok := sched.(*cron.SpecSchedule); ok {
		ss.Location = loc
		sched = wallcron.New(ss, loc)
	}
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, loc)).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires", spec)
	}
	return sched, nil
}

// NextRuns returns the next n scheduled times after t, in the plan's timezone. A plan
// without a schedule (manual runs only) has none.
func (p *Plan) NextRuns(after time.Time, n int) []time.Time {
	if p.sched == nil {
		return nil
	}
	var out []time.Time
	t := after
	for range n {
		t = p.sched.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t.In(p.Location))
	}
	return out
}
