package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Schedules are parsed by plan.ParseSchedule, the parser validate uses too, so that a plan
// validate accepts is exactly a plan the scheduler accepts.

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
