package schedule

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts the standard five fields, an optional leading seconds field and descriptors
// (@daily, @every 1h). It is a value, not package state: cron.Parser holds no mutable fields.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a plan schedule and binds it to loc (UTC when nil), unless the spec names its
// own zone with a CRON_TZ= or TZ= prefix.
//
// robfig/cron panics on some malformed specs (robfig/cron#470, #554: "TZ=0"), so parsing
// runs inside a recover and a panic becomes an ordinary error.
//
// Daylight saving: next times are computed in loc's wall clock by robfig/cron. A time that
// falls in the spring-forward gap does not exist that day and is skipped (America/New_York
// "30 2 * * *" does not fire on 2027-03-14); a time in the fall-back hour exists twice and
// fires twice ("30 1 * * *" at 01:30 EDT and 01:30 EST on 2027-11-07). Plans that must run
// exactly once a day whatever the zone does should use UTC.
func Parse(spec string, loc *time.Location) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("parse schedule %q: invalid spec (%v)", spec, r)
		}
	}()
	if loc == nil {
		loc = time.UTC
	}
	s, err = parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("parse schedule %q: %w", spec, err)
	}
	if ss, ok := s.(*cron.SpecSchedule); ok && ss.Location == time.Local {
		ss.Location = loc
	}
	return s, nil
}

// lastMissed returns the latest scheduled time in (after, now], or zero if there is none.
// The walk is bounded so that a per-second schedule after a year of downtime still answers
// quickly; past the bound the most recent time reached is good enough for a catch-up.
func lastMissed(s cron.Schedule, after, now time.Time) time.Time {
	const maxSteps = 1 << 20
	var last time.Time
	t := after
	for range maxSteps {
		next := s.Next(t)
		if next.IsZero() || next.After(now) {
			return last
		}
		last, t = next, next
	}
	return last
}
