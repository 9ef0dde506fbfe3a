package wallcron

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/refreshd/refreshd/internal/testkit"
)

// parser is the one plan.ParseSchedule uses (kept here to avoid an import cycle in tests).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func mustSpec(t testing.TB, expr string) *cron.SpecSchedule {
	t.Helper()
	s, err := parser.Parse(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		t.Fatalf("%q is not a cron spec", expr)
	}
	return ss
}

// TestNextByHand pins the rules on the daylight-saving cases that went wrong before
// (gaps, repeated hours, 30-minute and midnight changes), each worked out by hand
// from the zone's published rules.
func TestNextByHand(t *testing.T) {
	tests := []struct {
		zone, expr, after string // after: an RFC 3339 instant
		want              []string
	}{
		// America/New_York: 02:00 EST -> 03:00 EDT on 2027-03-14; 02:00 EDT -> 01:00 EST
		// on 2027-11-07.
		// 02:30 does not exist on 2027-03-14: it runs at the jump, 03:00 EDT, once.
		{"America/New_York", "30 2 * * *", "2027-03-12T12:00:00Z", []string{"2027-03-13T02:30:00-05:00", "2027-03-14T03:00:00-04:00", "2027-03-15T02:30:00-04:00"}},
		{"America/New_York", "0,30 2 * * *", "2027-03-13T12:00:00Z", []string{"2027-03-14T03:00:00-04:00", "2027-03-15T02:00:00-04:00"}},
		{"America/New_York", "0,30 2,3 * * *", "2027-03-13T12:00:00Z", []string{"2027-03-14T03:00:00-04:00", "2027-03-14T03:30:00-04:00", "2027-03-15T02:00:00-04:00"}},
		// A spec firing every hour does not catch up: its next time that exists.
		{"America/New_York", "30 * * * *", "2027-03-14T01:00:00-05:00", []string{"2027-03-14T01:30:00-05:00", "2027-03-14T03:30:00-04:00"}},
		{"America/New_York", "30 1 * * *", "2027-11-05T12:00:00Z", []string{"2027-11-06T01:30:00-04:00", "2027-11-07T01:30:00-04:00", "2027-11-08T01:30:00-05:00"}},
		{"America/New_York", "0 * * * *", "2027-11-07T04:30:00Z", []string{"2027-11-07T01:00:00-04:00", "2027-11-07T02:00:00-05:00"}},
		// From inside the repeated hour's second occurrence nothing in it fires again.
		{"America/New_York", "*/20 1 * * *", "2027-11-07T01:10:00-05:00", []string{"2027-11-08T01:00:00-05:00"}},
		// Australia/Lord_Howe: +10:30 -> +11 at 02:00 on 2026-10-04 (02:00-02:29 do not
		// exist); +11 -> +10:30 at 02:00 on 2026-04-05 (01:30-01:59 happen twice).
		{"Australia/Lord_Howe", "0 5 * * *", "2026-10-02T12:00:00Z", []string{"2026-10-03T05:00:00+10:30", "2026-10-04T05:00:00+11:00", "2026-10-05T05:00:00+11:00"}},
		{"Australia/Lord_Howe", "15 2 * * *", "2026-10-02T12:00:00Z", []string{"2026-10-03T02:15:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"Australia/Lord_Howe", "30 1 * * *", "2026-04-03T12:00:00Z", []string{"2026-04-04T01:30:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-06T01:30:00+10:30"}},
		{"Australia/Lord_Howe", "@weekly", "2026-09-30T00:00:00Z", []string{"2026-10-04T00:00:00+10:30", "2026-10-11T00:00:00+11:00"}},
		// America/Santiago: 24:00 -04 -> 01:00 -03 on 2026-09-06 (midnight does not
		// exist that day).
		{"America/Santiago", "0 0 * * *", "2026-09-04T12:00:00Z", []string{"2026-09-05T00:00:00-04:00", "2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"}},
		{"America/Santiago", "30 1 * * *", "2026-09-04T12:00:00Z", []string{"2026-09-05T01:30:00-04:00", "2026-09-06T01:30:00-03:00"}},
		// Day of month and day of week: OR when both are restricted ("*/2" counts as
		// restricted), AND when one is "*".
		{"UTC", "0 0 13 * 5", "2026-02-01T00:00:00Z", []string{"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z"}},
		{"UTC", "0 0 */10 * 1", "2026-02-01T00:00:00Z", []string{"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z", "2026-02-11T00:00:00Z"}},
		{"UTC", "0 0 * * 1", "2026-02-01T00:00:00Z", []string{"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"}},
		{"UTC", "0 0 */1 * 1", "2026-02-01T00:00:00Z", []string{"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"}},
		{"UTC", "0 0 29 2 *", "2026-01-01T00:00:00Z", []string{"2028-02-29T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.expr, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			s := New(mustSpec(t, tt.expr), loc)
			at, err := time.Parse(time.RFC3339, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for range tt.want {
				at = s.Next(at)
				got = append(got, at.Format(time.RFC3339))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("after %s:\n got %v\nwant %v", tt.after, got, tt.want)
			}
		})
	}
}

func TestNeverFires(t *testing.T) {
	s := New(mustSpec(t, "0 0 30 2 *"), time.UTC)
	if got := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); !got.IsZero() {
		t.Errorf("February 30 fired at %v", got)
	}
}

// propertyExprs are the expressions the property test checks in every zone: hand-picked
// shapes, then every hour at three minutes, so that each hour a zone can shift at is hit.
func propertyExprs() []string {
	exprs := []string{
		"* * * * *", "*/7 * * * *", "0 * * * *", "30 * * * *", "45 */2 * * *",
		"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly",
		"0 0 * * 0", "0 0 * * 6", "30 0 * * *", "59 23 * * *", "0 0 1 * *", "0 0 1,15 * *",
		"0 0 13 * 5", "0 0 */10 * 1", "0 12 */2 * *", "0 3 * * 1-5", "0 2 * * sun",
		"15 1-3 * * *", "0,30 0-4 * * *", "0 0 * 3,4,9,10,11 *",
		"0 0 31 * *", "0 0 1 1 *", "0 1 * * 0", "0 2 1-7 * 0",
		"0 30 2 * * *", "15 0 0 * * *", "*/20 */30 1 * * *", "0 0 0,12 * * *",
	}
	for h := range 24 {
		for _, m := range []int{0, 15, 30} {
			exprs = append(exprs, fmt.Sprintf("%d %d * * *", m, h))
		}
	}
	var ok []string
	for _, e := range exprs {
		if _, err := parser.Parse(e); err == nil {
			ok = append(ok, e)
		}
	}
	return ok
}

// zoneData reads every zone of Go's own tzdata (GOROOT/lib/time/zoneinfo.zip): the data
// the daemon uses when the system has none.
func zoneData(t *testing.T) map[string]*time.Location {
	t.Helper()
	zones := map[string]*time.Location{}
	for name, data := range testkit.GoTZData(t) {
		loc, err := time.LoadLocationFromTZData(name, data)
		if err != nil {
			t.Fatalf("zone %s: %v", name, err)
		}
		zones[name] = loc
	}
	return zones
}

// The property test's span: two years of transitions.
var (
	spanStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spanEnd   = time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)
)

// window is a stretch of instants checked minute by minute: four days either side of each
// offset change (a weekly spec fires in every window), or one week for a zone with none.
type window struct {
	from, to time.Time
	changes  []time.Time // the offset changes in it
}

// dense is the part of w where a spec firing more than twice an hour is checked: a day
// either side of the changes (its fires elsewhere say nothing new, and it would otherwise
// make most of the test's cost).
func (w window) dense() (from, to time.Time) {
	if len(w.changes) == 0 {
		return w.from, w.from.Add(48 * time.Hour)
	}
	return w.changes[0].Add(-24 * time.Hour), w.changes[len(w.changes)-1].Add(24 * time.Hour)
}

func windows(loc *time.Location) (ws []window, key string) {
	var b strings.Builder
	_, off := spanStart.In(loc).Zone()
	fmt.Fprintf(&b, "%d", off)
	const pad = 4 * 24 * time.Hour
	for x := spanStart.In(loc); ; {
		_, end := x.ZoneBounds()
		if end.IsZero() || !end.Before(spanEnd) {
			break
		}
		_, off := end.In(loc).Zone()
		fmt.Fprintf(&b, " %d:%d", end.Unix(), off)
		from, to := end.Add(-pad), end.Add(pad)
		if n := len(ws); n > 0 && !from.After(ws[n-1].to) {
			ws[n-1].to = to
			ws[n-1].changes = append(ws[n-1].changes, end)
		} else {
			ws = append(ws, window{from, to, []time.Time{end}})
		}
		x = end.In(loc)
	}
	if len(ws) == 0 {
		ws = []window{{spanStart, spanStart.Add(2 * pad), nil}}
	}
	return ws, b.String()
}

// minute is one instant's wall-clock reading.
type minute struct {
	at                          time.Time
	min, hour, dom, month, wday int
	first                       bool // no earlier instant read this wall-clock minute
	// skipped are the wall-clock minutes no instant read, when the clock jumped forward
	// to this one.
	skipped []civil
}

// readClock lists every minute of w with its wall-clock reading: the brute-force side,
// which knows nothing of gaps or repeats, only what a clock in the zone shows.
func readClock(loc *time.Location, w window) []minute {
	seen := map[civil]bool{}
	var ms []minute
	var prev civil
	// Start a day early so that a wall-clock minute first read before w counts as read.
	for at := w.from.Add(-24 * time.Hour); at.Before(w.to); at = at.Add(time.Minute) {
		l := at.In(loc)
		c := civilFrom(l)
		first := !seen[c]
		seen[c] = true
		var skipped []civil
		if at.After(w.from.Add(-24 * time.Hour)) {
			for x := prev.nextMinute(); x.utc().Before(c.utc()); x = x.nextMinute() {
				skipped = append(skipped, x)
			}
		}
		prev = c
		if at.Before(w.from) {
			continue
		}
		ms = append(ms, minute{at: l, min: l.Minute(), hour: l.Hour(), dom: l.Day(), month: int(l.Month()), wday: int(l.Weekday()), first: first, skipped: skipped})
	}
	return ms
}

// bruteFires lists the fire times in [from, to): every second the spec allows of every minute whose
// wall-clock reading matches and is read for the first time, and, unless the spec's hour
// field is every hour, the first instant after a forward jump that skipped a matching minute.
func bruteFires(sp *cron.SpecSchedule, ms []minute, from, to time.Time) []time.Time {
	matches := func(min, hour, dom, month, wday int) bool {
		if sp.Minute&(1<<min) == 0 || sp.Hour&(1<<hour) == 0 || sp.Month&(1<<month) == 0 {
			return false
		}
		domOK, dowOK := sp.Dom&(1<<dom) != 0, sp.Dow&(1<<wday) != 0
		if sp.Dom&starBit != 0 || sp.Dow&starBit != 0 {
			return domOK && dowOK
		}
		return domOK || dowOK
	}
	hourly := sp.Hour&^starBit == 1<<24-1
	var out []time.Time
	for _, m := range ms {
		if m.at.Before(from) || !m.at.Before(to) {
			continue
		}
		caughtUp := false
		if !hourly {
			for _, c := range m.skipped {
				if matches(c.minute, c.hour, c.day, int(c.month), int(weekday(c.year, c.month, c.day))) {
					out = append(out, m.at)
					caughtUp = true
					break
				}
			}
		}
		if !m.first || !matches(m.min, m.hour, m.dom, m.month, m.wday) {
			continue
		}
		for sec := range 60 {
			if sp.Second&(1<<sec) != 0 && !(sec == 0 && caughtUp) {
				out = append(out, m.at.Add(time.Duration(sec)*time.Second))
			}
		}
	}
	return out
}

// TestNextMatchesWallClock compares Next with the brute-force wall-clock reading for every
// expression in every zone of Go's tzdata, over two years of offset changes. Zones whose
// offsets and changes are identical over the span are checked once. With -short, a sample:
// the zones with unusual changes (Lord Howe's 30 minutes, Cairo, Beirut and Havana at
// midnight, Chatham, Santiago), New York, London, UTC, and every tenth other distinct zone.
func TestNextMatchesWallClock(t *testing.T) {
	exprs := propertyExprs()
	if len(exprs) < 100 {
		t.Fatalf("only %d expressions", len(exprs))
	}
	specs := make([]*cron.SpecSchedule, len(exprs))
	for i, e := range exprs {
		specs[i] = mustSpec(t, e)
	}
	zones := zoneData(t)
	named := map[string]bool{"Australia/Lord_Howe": true, "Africa/Cairo": true, "Asia/Beirut": true, "America/Havana": true,
		"Pacific/Chatham": true, "America/Santiago": true, "America/New_York": true, "Europe/London": true, "UTC": true}
	names := make([]string, 0, len(zones))
	for n := range zones {
		names = append(names, n)
	}
	slices.Sort(names)
	type group struct {
		zone string
		ws   []window
	}
	var groups []group
	byKey := map[string]bool{}
	for _, n := range names {
		ws, key := windows(zones[n])
		if byKey[key] && !named[n] {
			continue
		}
		byKey[key] = true
		groups = append(groups, group{n, ws})
	}
	if testing.Short() {
		var sample []group
		for i, g := range groups {
			if named[g.zone] || i%10 == 0 {
				sample = append(sample, g)
			}
		}
		groups = sample
	}
	t.Logf("%d expressions, %d zones in Go's tzdata, %d checked (distinct over %s..%s)", len(exprs), len(zones), len(groups), spanStart.Format("2006-01-02"), spanEnd.Format("2006-01-02"))

	var mu sync.Mutex
	var diffs int
	work := make(chan group)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for g := range work {
				n := checkZone(t, zones[g.zone], g.zone, g.ws, exprs, specs)
				mu.Lock()
				diffs += n
				mu.Unlock()
			}
		})
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
	if diffs > 0 {
		t.Errorf("%d differences from the wall-clock reading", diffs)
	}
}

// checkZone compares, in each window, the fire times Next yields from the window's start
// and Next from instants around each change with the brute-force list. It reports the
// first few differences and returns how many there were.
func checkZone(t *testing.T, loc *time.Location, zone string, ws []window, exprs []string, specs []*cron.SpecSchedule) int {
	diffs := 0
	report := func(format string, args ...any) {
		diffs++
		if diffs <= 3 {
			t.Errorf("%s: "+format, append([]any{zone}, args...)...)
		}
	}
	for _, w := range ws {
		ms := readClock(loc, w)
		probes := probesIn(loc, w)
		for i, sp := range specs {
			from, to := w.from, w.to
			if bits.OnesCount64(sp.Minute&^starBit)*bits.OnesCount64(sp.Hour&^starBit) > 48 {
				from, to = w.dense()
			}
			want := bruteFires(sp, ms, from, to)
			s := New(sp, loc)
			var got []time.Time
			for at := s.Next(from.Add(-time.Second)); !at.IsZero() && at.Before(to); at = s.Next(at) {
				got = append(got, at)
			}
			if !slices.EqualFunc(got, want, time.Time.Equal) {
				report("%q in %s..%s: got %d fires, want %d; first difference %s", exprs[i], from, to, len(got), len(want), firstDiff(got, want))
				continue
			}
			for _, p := range probes {
				got := s.Next(p)
				j, _ := slices.BinarySearchFunc(want, p, func(a, b time.Time) int { return a.Compare(b) })
				for j < len(want) && !want[j].After(p) {
					j++
				}
				if p.Before(from) {
					continue
				}
				if j < len(want) && !got.Equal(want[j]) || j == len(want) && got.Before(to) {
					report("%q: Next(%s) = %s, want %v", exprs[i], p.In(loc).Format(time.RFC3339), got.Format(time.RFC3339), want[min(j, len(want)-1)])
				}
			}
		}
	}
	return diffs
}

// probesIn returns instants around each offset change in w, where a wrong Next goes wrong:
// just before, at and after the change, and inside the repeated or skipped period.
func probesIn(loc *time.Location, w window) []time.Time {
	var ps []time.Time
	for x := w.from.In(loc); ; {
		_, end := x.ZoneBounds()
		if end.IsZero() || !end.Before(w.to) {
			break
		}
		for _, d := range []time.Duration{-90 * time.Minute, -time.Hour, -31 * time.Minute, -time.Second, 0, time.Second, 10 * time.Minute, 29*time.Minute + 59*time.Second, 30 * time.Minute, 59 * time.Minute, time.Hour, 2 * time.Hour} {
			ps = append(ps, end.Add(d))
		}
		x = end.In(loc)
	}
	return ps
}

func firstDiff(got, want []time.Time) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].Format(time.RFC3339)
		}
		if i < len(want) {
			w = want[i].Format(time.RFC3339)
		}
		if g != w {
			return fmt.Sprintf("#%d got %q want %q", i, g, w)
		}
	}
	return "none"
}
