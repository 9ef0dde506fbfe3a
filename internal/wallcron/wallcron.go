// Package wallcron computes the fire times of a parsed cron spec in local wall-clock time,
// correctly across every kind of UTC offset change.
//
// robfig/cron v3 parses specs well, but its SpecSchedule.Next walks instants and adds hours
// to them, which goes wrong whenever an offset change is not one hour at 02:00: in
// Australia/Lord_Howe (a 30-minute shift) "0 5 * * *" skips a day and "30 1 * * *" fires an
// extra time, and zones that shift at midnight (Africa/Cairo, America/Santiago,
// America/Havana, Asia/Beirut) lose or repeat days. Here the spec is matched against the
// civil calendar (year, month, day, hour, minute, second; no zone involved), and each
// matching civil time is then resolved to an instant:
//
//   - a wall-clock time that does not exist (it lies in a forward gap) fires once, at the
//     first instant after the jump, as cronie and Vixie cron run a job whose fixed time was
//     skipped: America/New_York "30 2 * * *" runs at 03:00 EDT on 2027-03-14. Several
//     matching times in one gap make one fire, and a spec that also matches the first
//     instant after the jump fires there once. A spec whose hour field is every hour
//     ("*/20 * * * *", "@hourly") does not catch up: it fires at its next existing time,
//     as cronie's wildcard jobs do (an hourly job gets no extra run at the jump);
//   - a wall-clock time that exists twice (it lies in a repeated period) fires once, at its
//     first occurrence;
//   - every other matching wall-clock time fires exactly once.
//
// Day of month and day of week combine as in robfig/cron (and Vixie cron): when either
// field is unrestricted ("*" or "?") a day must match both; when both are restricted, a day
// matching either fires. robfig/cron counts "*/N" with N > 1 as restricted ("*/1" is "*").
package wallcron

import (
	"time"

	"github.com/robfig/cron/v3"
)

// starBit is robfig/cron's marker for a field written as "*" or "?" (cron.SpecSchedule
// keeps it in the top bit of the field's set).
const starBit = 1 << 63

// searchYears bounds the search for a next time, as robfig/cron does: a spec that matches
// no civil time within it (February 30) never fires.
const searchYears = 5

// Schedule is a cron spec evaluated in local wall-clock time. It implements cron.Schedule.
type Schedule struct {
	spec *cron.SpecSchedule
	loc  *time.Location
	// catchUp: a matching time in a forward gap fires at the jump (the hour field is not
	// every hour).
	catchUp bool
}

// everyHour is the hour field of a spec that fires in every hour.
const everyHour = 1<<24 - 1

// New returns spec evaluated in loc's wall clock (spec's own Location when loc is nil,
// UTC when both are).
func New(spec *cron.SpecSchedule, loc *time.Location) *Schedule {
	if loc == nil {
		loc = spec.Location
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Schedule{spec: spec, loc: loc, catchUp: spec.Hour&^starBit != everyHour}
}

// Next returns the first fire time strictly after t, in the schedule's location, or the
// zero time if the spec matches nothing within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	t = t.In(s.loc)
	// Start at the first whole second after t's wall-clock reading.
	c := civilFrom(t.Truncate(time.Second)).nextSecond()
	limit := c.year + searchYears
	for {
		var ok bool
		if c, ok = s.nextCivil(c, limit); !ok {
			return time.Time{}
		}
		at, exists, after, jump := resolve(c, s.loc)
		switch {
		case !exists && s.catchUp && jump.After(t):
			// It lies in a gap: it fires at the jump, once (the search goes on after
			// the gap from there).
			return jump
		case !exists:
			c = after // it lies in a gap; go on from the gap's end
		case !at.After(t):
			// t is in the second occurrence of a repeated period and c's first occurrence
			// was before t. Every reading up to the end of the repeated period is likewise
			// in the past: go on from where the previous offset's clock stood at the
			// change.
			c = c.nextSecond()
			if start, _ := t.ZoneBounds(); !start.IsZero() {
				if end := civilFrom(start.Add(-time.Second)).nextSecond(); end.utc().After(c.utc()) {
					c = end
				}
			}
		default:
			return at
		}
	}
}

// civil is a wall-clock reading: a date and a time of day, in no zone.
type civil struct {
	year                      int
	month                     time.Month
	day, hour, minute, second int
}

func civilFrom(t time.Time) civil {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return civil{y, mo, d, h, mi, s}
}

// utc returns c read as UTC, where calendar arithmetic is plain.
func (c civil) utc() time.Time {
	return time.Date(c.year, c.month, c.day, c.hour, c.minute, c.second, 0, time.UTC)
}

func (c civil) nextMonth() civil {
	if c.month == time.December {
		return civil{year: c.year + 1, month: time.January, day: 1}
	}
	return civil{year: c.year, month: c.month + 1, day: 1}
}

func (c civil) nextDay() civil {
	if c.day == daysIn(c.year, c.month) {
		return c.nextMonth()
	}
	return civil{year: c.year, month: c.month, day: c.day + 1}
}

func (c civil) nextHour() civil {
	if c.hour == 23 {
		return c.nextDay()
	}
	c.hour, c.minute, c.second = c.hour+1, 0, 0
	return c
}

func (c civil) nextMinute() civil {
	if c.minute == 59 {
		return c.nextHour()
	}
	c.minute, c.second = c.minute+1, 0
	return c
}

func (c civil) nextSecond() civil {
	if c.second == 59 {
		return c.nextMinute()
	}
	c.second++
	return c
}

func daysIn(year int, m time.Month) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// weekday is Sakamoto's method for the proleptic Gregorian calendar.
func weekday(year int, m time.Month, day int) time.Weekday {
	offsets := [...]int{0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4}
	if m < time.March {
		year--
	}
	return time.Weekday((year + year/4 - year/100 + year/400 + offsets[m-1] + day) % 7)
}

// nextCivil returns the first wall-clock reading at or after c that the spec matches, and
// false if there is none before the year limit.
func (s *Schedule) nextCivil(c civil, limit int) (civil, bool) {
	sp := s.spec
	for c.year <= limit {
		switch {
		case sp.Month&(1<<uint(c.month)) == 0:
			c = c.nextMonth()
		case !dayMatches(sp, c):
			c = c.nextDay()
		case sp.Hour&(1<<uint(c.hour)) == 0:
			c = c.nextHour()
		case sp.Minute&(1<<uint(c.minute)) == 0:
			c = c.nextMinute()
		case sp.Second&(1<<uint(c.second)) == 0:
			c = c.nextSecond()
		default:
			return c, true
		}
	}
	return civil{}, false
}

// dayMatches is robfig/cron's rule for combining day of month and day of week.
func dayMatches(sp *cron.SpecSchedule, c civil) bool {
	dom := sp.Dom&(1<<uint(c.day)) != 0
	dow := sp.Dow&(1<<uint(weekday(c.year, c.month, c.day))) != 0
	if sp.Dom&starBit != 0 || sp.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// resolve returns the first instant whose wall clock in loc reads c. If no instant does
// (c lies in a forward gap), exists is false, after is the first civil time after the
// gap and jump the instant of the change that made the gap.
//
// Every offset in use is within a day of UTC, so an instant reading c lies within a day
// of c read as UTC; resolve walks the zone periods overlapping that range, oldest first,
// and takes the first in which c minus the period's offset falls.
func resolve(c civil, loc *time.Location) (at time.Time, exists bool, after civil, jump time.Time) {
	const reach = 26 * time.Hour
	cu := c.utc()
	u := cu.Unix()
	hi := cu.Add(reach)
	x := cu.Add(-reach).In(loc)
	prevOff, prevEnd := 0, int64(0)
	first, gap := true, false
	for {
		start, end := x.ZoneBounds()
		_, off := x.Zone()
		i := u - int64(off)
		if (start.IsZero() || i >= start.Unix()) && (end.IsZero() || i < end.Unix()) {
			return time.Unix(i, 0).In(loc), true, civil{}, time.Time{}
		}
		// A forward gap at the change between the previous period and this one: c was
		// past the old offset's reach (i with the old offset is at or after the change)
		// and short of the new one's (i is before the change).
		if !first && u-int64(prevOff) >= prevEnd && i < start.Unix() {
			after, gap = civilFrom(time.Unix(start.Unix()+int64(off), 0).UTC()), true
			jump = start.In(loc)
		}
		if end.IsZero() || !end.Before(hi) {
			break
		}
		prevOff, prevEnd, first = off, end.Unix(), false
		x = end.In(loc)
	}
	if !gap || !after.utc().After(cu) {
		after, jump = c.nextSecond(), time.Time{} // not expected; keeps the search moving
	}
	return time.Time{}, false, after, jump
}
