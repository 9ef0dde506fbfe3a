package history

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketPins indexes every package pin a run published, by when it was published: the
// constraint history ("when did httpx go to 0.28, on which branch?") without decoding a
// single run. Its entries outlive the runs' retention: they are small, and a pin change is
// worth knowing about for as long as the branch holds it.
const bucketPins = "pins"

// Pin is one package pin a run published to a constraints branch, or that someone else
// changed there (Outside) and a publish found when it fetched the branch.
type Pin struct {
	At      time.Time `json:"at"`   // when the run recorded the publish; an outside commit's date
	Plan    string    `json:"plan"` // "" outside refreshd
	Run     string    `json:"run"`  // "" outside refreshd
	Branch  string    `json:"branch"`
	Repo    string    `json:"repo"`
	Commit  string    `json:"commit"`           // the constraints commit
	Source  string    `json:"source,omitempty"` // the commit of the sources the run built
	File    string    `json:"file"`
	Package string    `json:"package"`
	Old     string    `json:"old,omitempty"` // "" when added
	New     string    `json:"new,omitempty"` // "" when removed
	// Outside marks a change made outside refreshd: Commit is that commit, Author its
	// author as git gave it (hostile text, bounded by the publish).
	Outside bool   `json:"outside,omitempty"`
	Author  string `json:"author,omitempty"`
}

// PinQuery selects pins: Package matches a package name by its normalized prefix (PEP 503:
// case and runs of - _ . do not matter; "http" finds httpx and httpcore), Branch exactly;
// empty selects all. At most Limit are returned (default 100, at most 1,000), newest first.
type PinQuery struct {
	Package, Branch string
	Limit           int
}

// Bounds of a pin query: what one request may return and may read.
const (
	defaultPinLimit = 100
	maxPinLimit     = 1000
	maxPinScan      = 100_000 // entries read before a query gives up looking further back
)

// normalizePackage is a package name as PEP 503 compares them.
func normalizePackage(name string) string {
	return strings.ToLower(pkgSeparators.ReplaceAllString(name, "-"))
}

var pkgSeparators = regexp.MustCompile(`[-_.]+`)

// pinKey orders pins by time (then run, file and package, so a save repeated by the run's
// progress overwrites its own entries). An outside change has its commit in place of the
// run: every save of the run that found it, and of a later run that found it again (one
// whose clone could not record the head as seen), indexes it under the same key. A dry
// run never looks outside.
func pinKey(p *Pin) []byte {
	by := p.Run
	if p.Outside {
		by = "outside " + p.Commit
	}
	return []byte(p.At.UTC().Format("20060102T150405.000000000Z") + "\x00" + by + "\x00" + p.File + "\x00" + p.Package)
}

// migratePins builds the pin index of a store written before it existed, from every run
// it holds: once, when the bucket is missing.
func migratePins(tx *bolt.Tx) error {
	if tx.Bucket([]byte(bucketPins)) != nil {
		return nil
	}
	if _, err := tx.CreateBucket([]byte(bucketPins)); err != nil {
		return err
	}
	runs, steps := tx.Bucket([]byte(bucketRuns)), tx.Bucket([]byte(bucketSteps))
	return runs.ForEach(func(k, v []byte) error {
		var r Run
		if json.Unmarshal(v, &r) != nil {
			return nil // an unreadable run is skipped here as everywhere
		}
		for i := range r.Steps { // a record from before steps had a bucket of their own
			if err := indexPins(tx, &r, &r.Steps[i]); err != nil {
				return err
			}
		}
		sb := steps.Bucket(k)
		if sb == nil {
			return nil
		}
		return sb.ForEach(func(_, sv []byte) error {
			var st Step
			if json.Unmarshal(sv, &st) != nil || st.Publish == nil {
				return nil
			}
			return indexPins(tx, &r, &st)
		})
	})
}

// indexPins records the pins step st of run r published, if it published a commit, once
// the step has ended: its end is the pins' time and part of their keys, the same in every
// later save. The publish action records what it pushed while its step still runs; keyed
// then (by the run's start), the same pins were indexed twice. A step of an ended run
// without an end of its own (an old record) is keyed by the run's start. The changes others
// made on the branch that the publish found are indexed too, at their commits' dates.
func indexPins(tx *bolt.Tx, r *Run, st *Step) error {
	p := st.Publish
	if p == nil {
		return nil
	}
	if err := indexOutside(tx, p); err != nil {
		return err
	}
	if !p.Changed || p.Commit == "" || len(p.Changes) == 0 {
		return nil
	}
	at := st.End
	if at.IsZero() {
		if r.Status == StatusRunning {
			return nil // indexed when the step ends
		}
		at = r.Start
	}
	source := ""
	if r.Source != nil {
		source = r.Source.Commit
	}
	pins := make([]Pin, len(p.Changes))
	for i, c := range p.Changes {
		pins[i] = Pin{At: at.UTC(), Plan: r.Plan, Run: r.ID, Branch: p.Branch, Repo: p.Repo, Commit: p.Commit, Source: source,
			File: c.File, Package: c.Package, Old: c.Old, New: c.New}
	}
	return putPins(tx, pins)
}

// putPins writes pins into the index, each under its key.
func putPins(tx *bolt.Tx, pins []Pin) error {
	if len(pins) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists([]byte(bucketPins))
	if err != nil {
		return err
	}
	for i := range pins {
		data, err := json.Marshal(&pins[i])
		if err != nil {
			return err
		}
		if err := b.Put(pinKey(&pins[i]), data); err != nil {
			return err
		}
	}
	return nil
}

// indexOutside records the pin changes of the commits made outside refreshd that publish p
// found on its branch.
func indexOutside(tx *bolt.Tx, p *Publish) error {
	var pins []Pin
	for _, oc := range p.Outside {
		for _, c := range oc.Changes {
			pins = append(pins, Pin{At: oc.At.UTC(), Branch: p.Branch, Repo: p.Repo, Commit: oc.Commit, File: c.File, Package: c.Package,
				Old: c.Old, New: c.New, Outside: true, Author: oc.Author})
		}
	}
	return putPins(tx, pins)
}

// Pins returns the published pins q selects, newest first.
func (s *Store) Pins(q PinQuery) ([]Pin, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultPinLimit
	}
	limit = min(limit, maxPinLimit)
	want := normalizePackage(q.Package)
	var out []Pin
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketPins))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		scanned := 0
		for k, v := c.Last(); k != nil && len(out) < limit && scanned < maxPinScan; k, v = c.Prev() {
			scanned++
			var p Pin
			if err := json.Unmarshal(v, &p); err != nil {
				s.log.Error("history: skipping an unreadable pin record", "key", fmt.Sprintf("%q", k), "err", err)
				continue
			}
			if q.Branch != "" && p.Branch != q.Branch || !strings.HasPrefix(normalizePackage(p.Package), want) {
				continue
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read published pins: %w", err)
	}
	return out, nil
}
