package plan

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// parseSchedule parses a robfig/cron v3 spec (5 fields, an optional leading seconds field,
// descriptors like @nightly or @every 1h) in loc. robfig/cron panics on some malformed specs
// ("TZ=0"), so parsing runs inside a recover: a bad plan must never crash the daemon.
func parseSchedule(spec string, loc *time.Location) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("bad schedule %q: %v; want 5 cron fields (\"0 2 * * *\"), 6 with seconds, or a descriptor like @nightly or @every 6h", spec, r)
		}
	}()
	parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	sched, err = parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("bad schedule %q: %v; want 5 cron fields (\"0 2 * * *\"), 6 with seconds, or a descriptor like @nightly or @every 6h", spec, err)
	}
	if ss, ok := sched.(*cron.SpecSchedule); ok && ss.Location == time.Local {
		ss.Location = loc
	}
	// A spec like "0 0 30 2 *" (February 30) parses but never fires.
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
