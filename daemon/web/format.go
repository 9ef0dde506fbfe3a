package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Time is a moment shown in a plan's time zone, with UTC on hover (the title) and in the
// machine-readable datetime attribute.
type Time struct {
	T   time.Time
	Loc *time.Location
}

func (t Time) IsZero() bool { return t.T.IsZero() }

// ISO is the datetime attribute: UTC, milliseconds.
func (t Time) ISO() string { return t.T.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// UTC is the hover text.
func (t Time) UTC() string { return t.T.UTC().Format("2006-01-02 15:04:05 UTC") }

// Local is the shown text, in the plan's zone with its abbreviation.
func (t Time) Local() string { return t.T.In(t.loc()).Format("2006-01-02 15:04:05 MST") }

// Clock is the time of day alone, for the timeline's axis.
func (t Time) Clock() string { return t.T.In(t.loc()).Format("15:04:05") }

func (t Time) loc() *time.Location {
	if t.Loc == nil {
		return time.UTC
	}
	return t.Loc
}

// duration is how long a span took, "-" when it never started and "... so far" while it
// runs (end zero, measured to now).
func duration(start, end, now time.Time) string {
	if start.IsZero() {
		return "-"
	}
	if end.IsZero() {
		return roundDuration(now.Sub(start)) + " so far"
	}
	return roundDuration(end.Sub(start))
}

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// age is how long ago t was, coarsely: "42s ago", "5m ago", "3h 12m ago", "2d 4h ago".
func age(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + roundDuration(-d)
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh ago", int(d.Hours())/24, int(d.Hours())%24)
}

// pathURL makes a path under prefix from a name that may hold "/" (a plan instance
// "plan/instance", a run id made from it): each segment is escaped on its own, so the
// route's trailing wildcard gets the name back whole.
func pathURL(prefix, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return prefix + strings.Join(parts, "/")
}

func planURL(plan string) string { return pathURL("/plans/", plan) }
func runURL(id string) string    { return pathURL("/runs/", id) }

func logURL(run, step string, attempt int) string {
	return "/log?" + url.Values{"run": {run}, "step": {step}, "attempt": {fmt.Sprint(attempt)}}.Encode()
}

func eventsURL(run, step string) string {
	return "/events?" + url.Values{"run": {run}, "step": {step}}.Encode()
}

// funcs are the templates' helpers; they hold no state.
var funcs = template.FuncMap{
	"planURL": planURL,
	"runURL":  runURL,
	"short": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"digest": func(d string) string { // sha256:abcdef012345... for narrow cells
		algo, hex, ok := strings.Cut(d, ":")
		if !ok || len(hex) <= 12 {
			return d
		}
		return algo + ":" + hex[:12] + "…"
	},
}

// field is one recorded value the dashboard has no special view for: fields that newer
// versions add to a run or step record (params, source commit, instance...) are shown as
// they are rather than hidden.
type field struct {
	Key   string
	Value string
	Pairs []pair // an object of scalars, shown as a small table
}

type pair struct{ Key, Value string }

// extras returns the JSON fields of v that known does not list, in key order.
func extras(v any, known ...string) []field {
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	var out []field
	for k, raw := range m {
		if slices.Contains(known, k) {
			continue
		}
		f := field{Key: k}
		var obj map[string]any
		var str string
		switch {
		case json.Unmarshal(raw, &str) == nil:
			f.Value = str
		case json.Unmarshal(raw, &obj) == nil && scalars(obj):
			for ok, ov := range obj {
				f.Pairs = append(f.Pairs, pair{ok, scalarText(ov)})
			}
			slices.SortFunc(f.Pairs, func(a, b pair) int { return strings.Compare(a.Key, b.Key) })
		default:
			f.Value = string(raw)
		}
		if f.Value == "" && len(f.Pairs) == 0 && string(raw) != `""` {
			f.Value = string(raw)
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b field) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func scalars(m map[string]any) bool {
	for _, v := range m {
		switch v.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func scalarText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
