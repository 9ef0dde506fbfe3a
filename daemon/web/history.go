package web

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
)

// pinRows is how many published pins the constraints page shows.
const pinRows = 200

type constraintsPage struct {
	page
	Package, Branch string
	Limit           int
	TZ              string
	Pins            []pinRow
}

type pinRow struct {
	history.Pin
	At   Time
	Link string // the search for this pin's package on its branch
}

// constraintsPage answers "which pins changed, when, on which branch and in which commit":
// the store's index of published pins, searched by package name and branch.
func (s *Server) constraintsPage(w http.ResponseWriter, r *http.Request) {
	q := history.PinQuery{Package: r.URL.Query().Get("package"), Branch: r.URL.Query().Get("branch"), Limit: pinRows}
	if len(q.Package) > 200 || len(q.Branch) > 200 {
		s.fail(w, r, fmt.Errorf("%w: a package or branch name of at most 200 bytes", errInvalid))
		return
	}
	pins, err := s.cfg.Source.Pins(r.Context(), q)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read the constraint history: %w", err))
		return
	}
	p := constraintsPage{page: s.page("Constraint history"), Package: q.Package, Branch: q.Branch, Limit: pinRows, TZ: time.Local.String()}
	for _, pin := range pins {
		p.Pins = append(p.Pins, pinRow{Pin: pin, At: Time{T: pin.At},
			Link: "/constraints?" + url.Values{"package": {pin.Package}, "branch": {pin.Branch}}.Encode()})
	}
	s.render(w, r, http.StatusOK, "constraints", p)
}

type cachesPage struct {
	page
	TZ    string
	Stale int
	Tags  []cacheRow
}

type cacheRow struct {
	control.CacheTag
	Changed Time
	Age     string
}

// cachesPage answers "which caches are stale right now": every watched tag, its digest, the
// age of its last change, who pushed it and whether it is older than its plan's window.
func (s *Server) cachesPage(w http.ResponseWriter, r *http.Request) {
	tags, err := s.cfg.Source.Caches(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("read the watched tags: %w", err))
		return
	}
	now := s.cfg.Now()
	p := cachesPage{page: s.page("Cache tags"), TZ: time.Local.String()}
	for _, t := range tags {
		row := cacheRow{CacheTag: t, Changed: Time{T: t.Changed}, Age: "-"}
		if !t.Changed.IsZero() {
			row.Age = age(t.Changed, now)
		}
		if t.Stale {
			p.Stale++
		}
		p.Tags = append(p.Tags, row)
	}
	s.render(w, r, http.StatusOK, "caches", p)
}
