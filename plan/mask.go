package plan

import (
	"fmt"
	"slices"
)

// Mask hides secret values in the graph's instance ids: mask (a redactor's String) is
// applied to the id every instance has and every instance Extend adds later is formed
// with, so a matrix value equal to a secret, or containing one, never names a step in the
// run's record, its log file names, the logs or the pages: "build[token=***]". Ids that
// masking makes equal (two secret values of one axis) are numbered, "build[token=***]#2",
// in graph order. The instances' values, templates and actions keep the real values: only
// the names change. The engine calls it once it has read the plan's secrets, before it
// records the run.
func (g *Graph) Mask(mask func(string) string) {
	x := g.x
	if x == nil { // a graph built by hand: no expansion state to keep in step
		x = &expander{byID: map[string]*Instance{}, byStep: map[string][]string{}, provisioned: map[string]string{}}
	}
	x.mask = mask
	rename := make(map[string]string, len(g.Instances))
	raw := x.raw
	x.raw, x.formed, x.byID = nil, nil, make(map[string]*Instance, len(g.Instances))
	for _, in := range g.Instances {
		id := in.ID
		if r, ok := raw[id]; ok {
			id = r
		}
		in.ID = x.label(id)
		rename[id], rename[in.ID] = in.ID, in.ID
		x.byID[in.ID] = in
	}
	for _, in := range g.Instances {
		for i, n := range in.Needs {
			if r, ok := raw[n]; ok {
				n = r
			}
			in.Needs[i] = rename[n]
		}
	}
	for s, ids := range x.byStep {
		x.byStep[s] = slices.Collect(func(yield func(string) bool) {
			for _, id := range ids {
				if r, ok := raw[id]; ok {
					id = r
				}
				if !yield(rename[id]) {
					return
				}
			}
		})
	}
	for b, id := range x.provisioned {
		if r, ok := raw[id]; ok {
			id = r
		}
		x.provisioned[b] = rename[id]
	}
}

// label is the id an instance formed as id is known by: id itself, or with the mask
// applied and, when another instance already has that, numbered.
func (x *expander) label(id string) string {
	if x.mask == nil {
		return id
	}
	m := x.mask(id)
	if m == id {
		return id
	}
	l := m
	for n := 2; x.byID[l] != nil; n++ {
		l = fmt.Sprintf("%s#%d", m, n)
	}
	if x.raw == nil {
		x.raw, x.formed = map[string]string{}, map[string]bool{}
	}
	x.raw[l], x.formed[id] = id, true
	return l
}

// taken reports whether an instance formed as id exists already (matrix values that are
// equal make a plan error, masked or not).
func (x *expander) taken(id string) bool {
	if _, dup := x.byID[id]; dup && x.raw[id] == "" {
		return true
	}
	return x.formed[id]
}

// forget drops what label recorded of the instance known as id (Extend's undo).
func (x *expander) forget(id string) {
	if r, ok := x.raw[id]; ok {
		delete(x.formed, r)
		delete(x.raw, id)
	}
}
