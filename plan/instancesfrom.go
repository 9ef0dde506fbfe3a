package plan

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Instances derived from a remote's branches. A list of release branches written in a plan
// goes stale the way a list of Python versions does; instead a plan may say which branches
// of its repository are instances:
//
//	instances_from:
//	  repo: https://github.com/apache/airflow.git
//	  branches: 'v[0-9]+-[0-9]+-test'     # the whole branch name must match
//	  newest: 1                          # the newest matching branch(es), by their numbers
//	  instance:                          # what each sets, as an instances: entry;
//	    schedule: "0 5 * * *"            # {{ .branch }} is the branch's name
//	    params: { ref: "{{ .branch }}" }
//
// The branches are listed (git ls-remote, by the BranchLister the loader is given) each
// time the plans load: at start, on reload, and when the daemon looks again on its own.
// Each chosen branch is an instance named after it, decoded exactly as one written under
// instances: (a branch instances: names itself keeps its written entry). A listing that fails keeps the branches last listed, with a warning saying
// why; with none known, the plan has only its written instances (a warning), or does not
// load if it has none.

// BranchLister lists the branches of a repository: the loader's only way to the network.
type BranchLister func(repo string) BranchListing

// BranchListing is what a lister found. Err with Names set: the listing failed and Names
// are the branches last listed (at ListedAt); Err alone: none known.
type BranchListing struct {
	Names    []string
	ListedAt time.Time
	Err      error
}

// DerivedInstances is how instances_from resolved, for refreshd plan and validate.
type DerivedInstances struct {
	Pos      Pos
	Repo     string
	Pattern  string
	Newest   int
	Matching []string // every listed branch the pattern matched, newest first (bounded)
	Chosen   []string // the Newest first of Matching
	// Written are the chosen branches instances: declares itself: their written entry is
	// the instance (its own settings), not the template.
	Written  []string
	ListedAt time.Time
	// Warning says what went wrong: a failed listing (and whether the last known branches
	// were kept), or no lister; "" when the listing worked.
	Warning string
}

// Bounds of instances_from: instances it may make, and branches of a listing considered.
const (
	maxNewest         = 20
	maxListedBranches = 100000
)

// derivedInstances decodes instances_from: and makes its instances' specs (nil, nil when the
// plan has none). A chosen branch that instances: declares itself is that entry's.
func (d *decoder) derivedInstances(doc *yaml.Node, lister BranchLister, written []*instanceSpec) (*DerivedInstances, []*instanceSpec) {
	n := findKey(doc, "instances_from")
	if n == nil {
		return nil, nil
	}
	n = resolve(n)
	di, re, tmpl := d.instancesFrom(n)
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	if di.Repo == "" || re == nil || di.Newest == 0 {
		d.errorf(n, "instances_from needs repo, branches (a pattern the whole branch name matches) and newest (how many of the newest matching branches, 1 to %d)", maxNewest)
		return nil, nil
	}
	if lister == nil {
		di.Warning = fmt.Sprintf("instances_from: the branches of %s were not listed (--offline); no instance derived", di.Repo)
		d.probeInstanceTemplate(di, tmpl)
		return di, nil
	}
	got := lister(di.Repo)
	di.ListedAt = got.ListedAt
	switch {
	case got.Err != nil && got.Names != nil:
		di.Warning = fmt.Sprintf("instances_from: listing the branches of %s failed, keeping those listed at %s: %v", di.Repo, got.ListedAt.UTC().Format(time.RFC3339), got.Err)
	case got.Err != nil:
		di.Warning = fmt.Sprintf("instances_from: listing the branches of %s failed and none were listed before: %v", di.Repo, got.Err)
		d.probeInstanceTemplate(di, tmpl)
		return di, nil
	}
	di.choose(got.Names, re)
	if len(di.Chosen) == 0 {
		d.probeInstanceTemplate(di, tmpl)
	}
	pd := &planDecoder{decoder: d}
	var out []*instanceSpec
	for _, b := range di.Chosen {
		if slices.ContainsFunc(written, func(s *instanceSpec) bool { return s.name == b }) {
			di.Written = append(di.Written, b)
			continue
		}
		v := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
		if tmpl != nil {
			v = cloneNode(tmpl)
			substBranch(v, b)
		}
		out = append(out, d.instanceSpec(pd, di.Pos, b, v))
	}
	return di, out
}

// instancesFrom decodes the fields of instances_from n: its repo and newest into di, the
// branches pattern compiled to match whole names (nil when missing or invalid) and the
// instance template (nil when absent).
func (d *decoder) instancesFrom(n *yaml.Node) (di *DerivedInstances, re *regexp.Regexp, tmpl *yaml.Node) {
	di = &DerivedInstances{Pos: d.pos(n)}
	d.fields(n, "instances_from", []field{
		{"repo", func(v *yaml.Node) { di.Repo = d.nonEmpty(v, "instances_from repo") }},
		{"branches", func(v *yaml.Node) {
			if r := d.regex(v, "instances_from branches"); r != nil {
				di.Pattern = r.String()
				re = regexp.MustCompile(`^(?:` + r.String() + `)$`)
			}
		}},
		{"newest", func(v *yaml.Node) { di.Newest = d.integer(v, "instances_from newest", 1, maxNewest) }},
		{"instance", func(v *yaml.Node) {
			if resolve(v).Kind != yaml.MappingNode {
				d.errorf(v, "instances_from instance must be a mapping like an instances: entry ({schedule, params, vars, workdir, timezone}), not %s", kindName(resolve(v)))
				return
			}
			tmpl = resolve(v)
		}},
	})
	return di, re, tmpl
}

// probeInstanceTemplate checks the instance template tmpl (when there is one) when no
// instance is derived from it (not listed, or no branch matches): a mistake in it must
// not wait for the first matching branch.
func (d *decoder) probeInstanceTemplate(di *DerivedInstances, tmpl *yaml.Node) {
	if tmpl == nil {
		return
	}
	v := cloneNode(tmpl)
	substBranch(v, "main")
	spec := d.instanceSpec(&planDecoder{decoder: d}, di.Pos, "main", v)
	// What no param value may hold, as a derived instance's would be refused (the
	// declared params and their rules are checked per instance plan).
	for _, name := range slices.Sorted(maps.Keys(spec.params)) {
		if msg := checkParamChars(spec.params[name]); msg != "" {
			d.errorAt(spec.paramsPos[name], "instances_from instance param %s: %s", name, msg)
		}
	}
}

// choose sets di's Matching (the listed branches re matches, newest first, at most 100
// kept) and Chosen (the Newest of them), warning when none matches.
func (di *DerivedInstances) choose(listed []string, re *regexp.Regexp) {
	for _, b := range listed[:min(len(listed), maxListedBranches)] {
		if re.MatchString(b) && namePattern.MatchString(b) {
			di.Matching = append(di.Matching, b)
		}
	}
	slices.SortStableFunc(di.Matching, newerFirst)
	di.Matching = slices.Compact(di.Matching)
	di.Chosen = di.Matching[:min(di.Newest, len(di.Matching))]
	if len(di.Matching) > 100 {
		di.Matching = di.Matching[:100]
	}
	if len(di.Chosen) == 0 && di.Warning == "" {
		di.Warning = fmt.Sprintf("instances_from: no branch of %s matches %s", di.Repo, di.Pattern)
	}
}

// substBranch replaces {{ .branch }} in every scalar under n (the only name an
// instances_from instance template knows; anything else stays for the plan's templates).
func substBranch(n *yaml.Node, branch string) {
	if n.Kind == yaml.ScalarNode {
		n.Value = branchRef.ReplaceAllLiteralString(n.Value, branch)
	}
	for _, c := range n.Content {
		substBranch(c, branch)
	}
}

var branchRef = regexp.MustCompile(`\{\{-?\s*\.branch\s*-?\}\}`)

// newerFirst orders branch names by the numbers in them, greatest first (v10-0-test
// before v3-3-test before v3-1-test), then by name.
func newerFirst(a, b string) int {
	na, nb := numbers(a), numbers(b)
	for i := 0; i < min(len(na), len(nb)); i++ {
		if na[i] != nb[i] {
			if na[i] > nb[i] {
				return -1
			}
			return 1
		}
	}
	if len(na) != len(nb) {
		return len(nb) - len(na)
	}
	return strings.Compare(a, b)
}

var digits = regexp.MustCompile(`[0-9]+`)

func numbers(s string) []int {
	var out []int
	for _, m := range digits.FindAllString(s, 8) {
		n, err := strconv.Atoi(m)
		if err != nil {
			n = int(^uint(0) >> 1)
		}
		out = append(out, n)
	}
	return out
}
