package git

import (
	"bufio"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Kind is how one package pin changed.
type Kind string

const (
	Upgraded   Kind = "upgraded"
	Downgraded Kind = "downgraded"
	Added      Kind = "added"
	Removed    Kind = "removed"
	Repinned   Kind = "changed" // same package, a version that does not compare (e.g. a new URL)
)

// Change is one package pin that changed in one file.
type Change struct {
	File    string // path in the branch
	Package string // normalized name, plus " ; marker" when the pin has an environment marker
	Old     string // "" when added
	New     string // "" when removed
	Kind    Kind
}

func (c Change) String() string {
	switch c.Kind {
	case Added:
		return fmt.Sprintf("+ %s %s", c.Package, c.New)
	case Removed:
		return fmt.Sprintf("- %s %s", c.Package, c.Old)
	case Downgraded:
		return fmt.Sprintf("%s: %s -> %s (DOWNGRADE)", c.Package, c.Old, c.New)
	default:
		return fmt.Sprintf("%s: %s -> %s", c.Package, c.Old, c.New)
	}
}

var requirementLine = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$`)

var nameSeparators = regexp.MustCompile(`[-_.]+`)

// parsePins reads a pip constraints file: `name==version`, `name @ url`, other specifiers,
// comments, blank lines and pip options (`--index-url ...`, ignored). The version of a
// `name==version` pin is the version alone; any other specifier is kept whole.
func parsePins(data []byte) map[string]string {
	pins := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "-") {
			continue
		}
		// A comment starts at " #"; a '#' inside a URL (#egg=, #sha256=) is not one.
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		m := requirementLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := strings.ToLower(nameSeparators.ReplaceAllString(m[1], "-")) // PEP 503
		spec, marker, _ := strings.Cut(m[3], ";")
		spec, marker = strings.TrimSpace(spec), strings.TrimSpace(marker)
		if marker != "" {
			name += " ; " + marker
		}
		if v, ok := strings.CutPrefix(spec, "=="); ok {
			spec = strings.TrimSpace(v)
		}
		// The marker and the version are free text: bounded, without control or format characters,
		// before they reach output, logs, the record and pages.
		pins[boundText(name, MaxPinBytes)] = boundText(spec, MaxPinBytes)
	}
	return pins
}

// diffPins lists the package changes from old to new in file, sorted by package.
func diffPins(file string, old, new map[string]string) []Change {
	var out []Change
	for name, nv := range new {
		ov, ok := old[name]
		switch {
		case !ok:
			out = append(out, Change{File: file, Package: name, New: nv, Kind: Added})
		case ov != nv:
			out = append(out, Change{File: file, Package: name, Old: ov, New: nv, Kind: ChangeKind(ov, nv)})
		}
	}
	for name, ov := range old {
		if _, ok := new[name]; !ok {
			out = append(out, Change{File: file, Package: name, Old: ov, Kind: Removed})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Package < out[j].Package })
	return out
}

// ChangeKind classifies a pin going from old to new ("" for none): added, removed,
// upgraded, downgraded, or changed when the versions do not compare (a URL, a range). The
// history keeps only old and new; readers of it (the dashboard) classify with this, the
// same rule the publish summary used.
func ChangeKind(old, new string) Kind {
	switch {
	case old == "":
		return Added
	case new == "":
		return Removed
	}
	c, ok := compareVersions(old, new)
	switch {
	case !ok:
		return Repinned
	case c > 0:
		return Downgraded
	}
	return Upgraded
}

// compareVersions orders two PEP 440 versions well enough to tell an upgrade from a
// downgrade: numeric release segments compare as numbers, and a pre-release (a, b, rc,
// dev) sorts before its release, a post-release after it. ok is false when either is not
// a plain version (a URL, a range).
func compareVersions(a, b string) (c int, ok bool) {
	ta, oka := versionTokens(a)
	tb, okb := versionTokens(b)
	if !oka || !okb {
		return 0, false
	}
	for i := 0; i < len(ta) || i < len(tb); i++ {
		x, y := tokenAt(ta, i), tokenAt(tb, i)
		if x != y {
			if x < y {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, true
}

var versionPattern = regexp.MustCompile(`^v?\d+(\.\d+)*([._-]?(a|b|c|rc|alpha|beta|pre|preview|post|dev|r|rev)[._-]?\d*)*(\+[a-z0-9.]+)?$`)

var versionSuffix = regexp.MustCompile(`([a-z]+)[._-]?(\d*)`)

// versionTokens turns a version into comparable numbers: release segments as given, then
// for each suffix a rank (dev < a < b < rc < release < post) and its number.
func versionTokens(v string) ([]int64, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	if !versionPattern.MatchString(v) {
		return nil, false
	}
	v, _, _ = strings.Cut(v, "+") // local versions do not order releases
	v = strings.TrimPrefix(v, "v")
	const release = 4
	rank := map[string]int64{"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "c": 3, "rc": 3, "pre": 3, "preview": 3, "post": 5, "r": 5, "rev": 5}
	var toks []int64
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.') {
		i++
	}
	for _, seg := range strings.Split(strings.TrimRight(v[:i], "."), ".") {
		n, err := strconv.ParseInt(seg, 10, 64)
		if err != nil {
			return nil, false
		}
		toks = append(toks, n)
	}
	for len(toks) > 1 && toks[len(toks)-1] == 0 { // 1.0 == 1.0.0
		toks = toks[:len(toks)-1]
	}
	// Segments end with a marker so that 1.0 vs 1.0.1 compares the release first.
	toks = append(toks, -1)
	rest := strings.Trim(v[i:], "._-")
	if rest == "" {
		return append(toks, release), true
	}
	for _, m := range versionSuffix.FindAllStringSubmatch(rest, -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		toks = append(toks, rank[m[1]], n)
	}
	return toks, true
}

func tokenAt(t []int64, i int) int64 {
	if i < len(t) {
		return t[i]
	}
	return 0
}

// summarize counts changes per kind; a package changed in three files counts three times,
// and the file count says so: "14 upgraded, 2 added, 1 removed across 3 files".
func summarize(changes []Change, files int) string {
	if files == 0 {
		return "no change"
	}
	count := map[Kind]int{}
	for _, c := range changes {
		count[c.Kind]++
	}
	var parts []string
	for _, k := range []Kind{Upgraded, Downgraded, Repinned, Added, Removed} {
		if count[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[k], k))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no package pins changed")
	}
	s := strings.Join(parts, ", ")
	if files == 1 {
		return s + " in 1 file"
	}
	return fmt.Sprintf("%s across %d files", s, files)
}
