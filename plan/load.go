package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileSize bounds what a plan file may be; real plans are a few kilobytes.
const maxFileSize = 1 << 20

// LoadFile loads and validates one plan file of a plan without instances. A file that
// declares instances is an error naming them: load it with LoadPlans.
func LoadFile(path string) (*Plan, error) {
	plans, err := LoadPlans(path)
	if err != nil {
		return nil, err
	}
	return single(plans)
}

// single returns the one plan of a file, or an error for a file of instances.
func single(plans []*Plan) (*Plan, error) {
	if len(plans) == 1 && plans[0].Instance == "" {
		return plans[0], nil
	}
	p := plans[0]
	return nil, ErrorList{{Pos: p.namePos, Msg: fmt.Sprintf("plan %s declares instances (%s); name one", p.Base, instanceList(plans))}}
}

// LoadPlans loads and validates one plan file: its plan, or one plan per instance it
// declares (named PLAN/INSTANCE, in file order). Builders referenced by name are looked up
// in the shared builders files of the same directory (files with a top-level builders: list
// and no plan:). Every problem of the file is in the returned ErrorList.
func LoadPlans(path string) ([]*Plan, error) {
	return LoadPlansWith(path, LoadOptions{})
}

// LoadPlansWith is LoadPlans with overlays and --var overrides laid over the plan.
func LoadPlansWith(path string, opts LoadOptions) ([]*Plan, error) {
	plans, err := LoadFilesWith([]string{path}, opts)
	if err != nil {
		return nil, err
	}
	return plans, nil
}

// LoadFiles loads and validates plan files, as LoadPlans does for each, reading each
// directory involved once: validating every file of a directory one by one costs what
// validating the directory does. It returns the valid plans in the order of the files
// given AND, when any file is invalid, an ErrorList of all their problems.
func LoadFiles(paths []string) ([]*Plan, error) {
	return loadFiles(paths, newFSReader(loadTimeout), LoadOptions{})
}

// LoadFilesWith is LoadFiles with overlays and --var overrides laid over the plans.
func LoadFilesWith(paths []string, opts LoadOptions) ([]*Plan, error) {
	return loadFiles(paths, newFSReader(loadTimeout), opts)
}

func loadFiles(paths []string, rd *fsReader, opts LoadOptions) ([]*Plan, error) {
	byDir := map[string]map[string]bool{}
	var dirs []string
	for _, path := range paths {
		dir := filepath.Dir(path)
		if byDir[dir] == nil {
			byDir[dir] = map[string]bool{}
			dirs = append(dirs, dir)
		}
		byDir[dir][filepath.Clean(path)] = true
	}
	loaded := map[string][]*Plan{}
	names := map[string]bool{} // the plan: names of the files loaded
	var errs ErrorList
	extra, err := readOverlays(rd, opts.Overlays)
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		l := newLoader()
		l.fs = rd
		l.vars, l.branches = opts.Vars, opts.Branches
		files, err := l.read(dir, byDir[dir])
		if err != nil {
			return nil, err
		}
		l.sharedBuilders(files)
		l.overlays = l.overlaysFor(append(files, extra...), nil, false)
		for _, f := range files {
			if !byDir[dir][f.path] {
				continue
			}
			if f.kind == kindBuilders {
				l.errs = append(l.errs, &Error{Pos: Pos{File: f.path, Line: 1, Col: 1},
					Msg: "this is a shared builders file (builders: and no plan:), not a plan; validate its directory instead"})
				continue
			}
			if f.kind == kindOverlay {
				if !byDir[dir][f.path] {
					continue
				}
				l.errs = append(l.errs, &Error{Pos: Pos{File: f.path, Line: 1, Col: 1},
					Msg: "this is an overlay (overlay: PLAN), not a plan; validate the plan's file or its directory"})
				continue
			}
			names[planName(f.doc)] = true
			loaded[f.path] = l.plans(f)
		}
		errs = append(errs, l.errs...)
	}
	errs = append(errs, unusedOverlays(extra, names)...)
	var plans []*Plan
	for _, path := range paths {
		plans = append(plans, loaded[filepath.Clean(path)]...)
	}
	return plans, errs.err()
}

// LoadDir loads every *.yaml and *.yml file of dir (not recursively, in name order). It
// returns the valid plans (one per instance for a plan with instances) AND, when any file is
// invalid, an ErrorList of all their problems: a daemon keeps running the last good version
// of an invalid plan.
func LoadDir(dir string) ([]*Plan, error) {
	return loadDir(dir, newFSReader(loadTimeout), LoadOptions{})
}

// LoadDirWith is LoadDir with more overlays and --var overrides laid over the plans.
func LoadDirWith(dir string, opts LoadOptions) ([]*Plan, error) {
	return loadDir(dir, newFSReader(loadTimeout), opts)
}

func loadDir(dir string, rd *fsReader, opts LoadOptions) ([]*Plan, error) {
	l := newLoader()
	l.fs = rd
	l.vars, l.branches = opts.Vars, opts.Branches
	files, err := l.read(dir, nil)
	if err != nil {
		return nil, err
	}
	extra, err := readOverlays(rd, opts.Overlays)
	if err != nil {
		return nil, err
	}
	l.sharedBuilders(files)
	names := map[string]bool{}
	for _, f := range files {
		if f.kind == kindPlan {
			if name := planName(f.doc); name != "" {
				names[name] = true
			}
		}
	}
	l.overlays = l.overlaysFor(append(files, extra...), names, true)
	var plans []*Plan
	seen := make(map[string]Pos)
	for _, f := range files {
		if f.kind != kindPlan {
			continue
		}
		ps := l.plans(f)
		if len(ps) == 0 {
			continue
		}
		p := ps[0]
		if first, dup := seen[p.Base]; dup {
			l.errs = append(l.errs, &Error{Pos: p.namePos, Msg: fmt.Sprintf("plan name %q is already used by %s; plan names must be unique in a directory", p.Base, first)})
			continue
		}
		seen[p.Base] = p.namePos
		plans = append(plans, ps...)
	}
	return plans, l.errs.err()
}

// Parse loads one plan from data, as if read from file, with no shared builders. A file
// that declares instances is an error naming them (ParsePlans loads those).
func Parse(file string, data []byte) (*Plan, error) {
	plans, err := ParsePlans(file, data)
	if err != nil {
		return nil, err
	}
	return single(plans)
}

// ParsePlans is Parse for a file that may declare instances: one plan per instance. It is
// what the fuzz target drives.
func ParsePlans(file string, data []byte) ([]*Plan, error) {
	l := newLoader()
	f := l.parse(file, data)
	if f == nil {
		return nil, l.errs.err()
	}
	if f.kind != kindPlan {
		l.errs = append(l.errs, &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "no plan: key; a plan needs plan: NAME and steps:"})
		return nil, l.errs.err()
	}
	plans := l.plans(f)
	if err := l.errs.err(); err != nil {
		return nil, err
	}
	return plans, nil
}

type fileKind int

const (
	kindPlan fileKind = iota
	kindBuilders
	kindOverlay
)

type parsedFile struct {
	path string
	doc  *yaml.Node // the top-level mapping
	kind fileKind
	// origin names the overlay file of each node an overlay laid over the document;
	// overrides lists what it set (both nil without overlays).
	origin    map[*yaml.Node]string
	overrides []Override
}

// loader holds what one load of a directory shares: the builders declared so far (shared
// files first, then plans in name order) and every error.
type loader struct {
	builders map[string]*Builder
	errs     ErrorList
	fs       *fsReader           // reads the files within one deadline
	known    map[string][]string // when set, the keys each object kind accepts (schema test)
	// overlays are the overlay files of this load by the plan they name; vars the --var
	// overrides.
	overlays map[string][]*parsedFile
	vars     []VarOverride
	branches BranchLister
}

func newLoader() *loader {
	return &loader{builders: make(map[string]*Builder), fs: newFSReader(loadTimeout)}
}

// read parses the plan files of dir: all of them when only is nil, else the files in only
// plus the shared builders files. A sibling outside only that cannot be read is not this
// load's problem; a file in only that cannot be read is an error.
func (l *loader) read(dir string, only map[string]bool) ([]*parsedFile, error) {
	entries, err := l.fs.readDir(dir)
	if err != nil {
		return nil, err
	}
	wanted := func(path string) bool { return only == nil || only[path] }
	var out []*parsedFile
	found := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(dir, name)
		found[path] = true
		data, err := l.fs.readFile(path)
		if err != nil {
			if wanted(path) {
				l.errs = append(l.errs, &Error{Pos: Pos{File: path}, Msg: err.Error()})
			}
			continue
		}
		if !wanted(path) && !bytes.Contains(data, []byte("builders")) && !bytes.Contains(data, []byte(overlayKey)) {
			continue // cannot be a shared builders file or an overlay: do not parse it
		}
		var f *parsedFile
		if wanted(path) {
			f = l.parse(path, data)
		} else {
			// A sibling's own syntax errors are its load's problem, not this one's.
			f = (&loader{}).parse(path, data)
		}
		if f == nil || !wanted(path) && f.kind == kindPlan {
			continue
		}
		out = append(out, f)
	}
	for _, path := range slices.Sorted(maps.Keys(only)) {
		if found[path] {
			continue
		}
		if _, err := os.Lstat(path); err != nil {
			return nil, fmt.Errorf("load plan: %w", err)
		}
		return nil, fmt.Errorf("load plan %s: not a .yaml or .yml file", path)
	}
	return out, nil
}

// parse reads the YAML of one file and classifies it. Syntax errors are recorded with the
// line yaml.v3 reports.
func (l *loader) parse(path string, data []byte) *parsedFile {
	if err := checkUTF8(path, data); err != nil {
		l.errs = append(l.errs, err)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errs = append(l.errs, &Error{Pos: Pos{File: path, Line: 1, Col: 1}, Msg: "empty file; a plan needs plan: NAME and steps:"})
			return nil
		}
		l.errs = append(l.errs, yamlError(path, err))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.errs = append(l.errs, &Error{Pos: Pos{File: path, Line: extra.Line, Col: extra.Column}, Msg: "a second YAML document; one plan per file"})
		return nil
	} else if !errors.Is(err, io.EOF) {
		l.errs = append(l.errs, yamlError(path, err))
		return nil
	}
	if err := expandAliases(path, &doc); err != nil {
		l.errs = append(l.errs, err)
		return nil
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		l.errs = append(l.errs, &Error{Pos: Pos{File: path, Line: root.Line, Col: root.Column}, Msg: "a plan file must be a mapping with plan:, schedule:, steps: ..."})
		return nil
	}
	f := &parsedFile{path: path, doc: root, kind: kindPlan}
	hasPlan, hasBuilders, hasOverlay := false, false, false
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "plan":
			hasPlan = true
		case "builders":
			hasBuilders = true
		case overlayKey:
			hasOverlay = true
		}
	}
	switch {
	case !hasPlan && hasOverlay:
		f.kind = kindOverlay
	case !hasPlan && hasBuilders:
		f.kind = kindBuilders
	}
	return f
}

// yamlError turns a yaml.v3 error ("yaml: line 3: did not find expected key") into a placed
// Error. yaml.v3 gives no column, so column 1 is used.
func yamlError(path string, err error) *Error {
	msg := err.Error()
	line := 1
	var rest string
	if n, _ := fmt.Sscanf(msg, "yaml: line %d:", &line); n == 1 {
		if i := strings.Index(msg[len("yaml: line "):], ":"); i >= 0 {
			rest = strings.TrimSpace(msg[len("yaml: line ")+i+1:])
		}
	} else {
		rest = strings.TrimPrefix(msg, "yaml: ")
	}
	return &Error{Pos: Pos{File: path, Line: line, Col: 1}, Msg: "YAML syntax: " + rest}
}

// sharedBuilders registers the builders of every shared builders file.
func (l *loader) sharedBuilders(files []*parsedFile) {
	for _, f := range files {
		if f.kind != kindBuilders {
			continue
		}
		d := &decoder{file: f.path, known: l.known}
		var list []*yaml.Node
		d.fields(f.doc, "builders file", []field{
			{"builders", func(v *yaml.Node) {
				v = resolve(v)
				if v.Kind != yaml.SequenceNode {
					d.errorf(v, "builders must be a list of builders, not %s", kindName(v))
					return
				}
				list = v.Content
			}},
		})
		for _, n := range list {
			if b := d.builder(n); b != nil {
				l.register(d, b)
			}
		}
		l.errs = append(l.errs, d.errs...)
	}
}

// register records a builder definition; a different definition of a known name is an error
// naming both places, since both would fight over one real buildx builder.
func (l *loader) register(d *decoder, b *Builder) bool {
	if first, ok := l.builders[b.Name]; ok {
		if !sameBuilder(first, b) {
			d.errorAt(b.Pos, "builder %q is defined differently at %s; one builder name has one definition (declare it once in a shared builders file and use {ref: %s})", b.Name, first.Pos, b.Name)
			return false
		}
		return true
	}
	l.builders[b.Name] = b
	return true
}

func sameBuilder(a, b *Builder) bool {
	if a.Name != b.Name || a.Driver != b.Driver || a.Emulation != b.Emulation || len(a.Nodes) != len(b.Nodes) {
		return false
	}
	for i := range a.Nodes {
		x, y := a.Nodes[i], b.Nodes[i]
		if x.Name != y.Name || x.Endpoint != y.Endpoint || x.Platform != y.Platform || !mapsEqual(x.DriverOpts, y.DriverOpts) {
			return false
		}
	}
	return true
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// plan decodes and validates one plan file (as instance spec, when not nil); nil when it
// has errors (recorded in l.errs).
func (l *loader) plan(f *parsedFile, spec *instanceSpec) *Plan {
	d := &decoder{file: f.path, known: l.known, origin: f.origin}
	p := d.plan(f.doc, l, spec)
	l.errs = append(l.errs, d.errs...)
	if len(d.errs) > 0 {
		return nil
	}
	return p
}
