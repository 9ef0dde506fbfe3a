package history

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Tag is what refreshd knows of a registry tag it watches: the digest it last saw and when
// it saw that digest change. A registry keeps no push time, and a BuildKit registry-cache
// manifest carries no created time, so the only reliable signal for a tag pushed by someone
// else is a change of its digest between two looks.
type Tag struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"` // "" when the tag was absent
	// Checked is when refreshd last looked at the tag.
	Checked time.Time `json:"checked"`
	// ChangedAfter: the digest changed after this time (the look before the one that saw the
	// change) and by ChangedBy. Zero while refreshd has only ever seen one digest: it then
	// cannot tell when the tag was pushed.
	ChangedAfter time.Time `json:"changed_after,omitzero"`
	ChangedBy    time.Time `json:"changed_by,omitzero"`
	// Asked is when a run last looked at the tag (skip_if, buildx_cache, verify_cache), as
	// opposed to the daemon's own periodic looks (LookTag): a tag no run asks for any more
	// is no longer looked at.
	Asked time.Time `json:"asked,omitzero"`
	// Plan is the plan whose run last asked for the tag.
	Plan string `json:"plan,omitempty"`
	// PushedBy is the refreshd run that pushed the current digest (its own cache export);
	// empty when the digest came from outside refreshd (CI, a person) or when refreshd first
	// saw it without pushing it.
	PushedBy string `json:"pushed_by,omitempty"`
}

// Sighting is who looked at a tag: a run (Run) of a plan (Plan), and whether that run
// pushed the digest it saw (its own cache export, read back right after the push).
type Sighting struct {
	Plan, Run string
	Pushed    bool
}

// LastAsked is when a run last asked for the tag; a record from before Asked existed
// counts its last look.
func (t Tag) LastAsked() time.Time {
	if t.Asked.IsZero() {
		return t.Checked
	}
	return t.Asked
}

// ObserveTag records that a run saw ref with digest ("" for absent) at time at and returns
// the updated record. A digest different from the one recorded is a change made between the
// previous look and at.
func (s *Store) ObserveTag(ref, digest string, at time.Time) (Tag, error) {
	return s.observeTag(ref, digest, at, true, Sighting{})
}

// ObserveTagBy is ObserveTag by a known run: the record keeps the run's plan and, when the
// run pushed the digest and it is new, that run as the one that changed the tag.
func (s *Store) ObserveTagBy(ref, digest string, at time.Time, by Sighting) (Tag, error) {
	return s.observeTag(ref, digest, at, true, by)
}

// LookTag records the digest of a periodic look (the daemon's, between runs) like
// ObserveTag, without counting it as a run asking for the tag: the more often a tag is
// looked at, the closer to its push a change is dated.
func (s *Store) LookTag(ref, digest string, at time.Time) (Tag, error) {
	return s.observeTag(ref, digest, at, false, Sighting{})
}

func (s *Store) observeTag(ref, digest string, at time.Time, asked bool, by Sighting) (Tag, error) {
	at = at.UTC()
	var tag Tag
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketTags))
		old, found := Tag{}, false
		if data := b.Get([]byte(ref)); data != nil {
			if err := json.Unmarshal(data, &old); err == nil {
				found = true
			} else {
				s.log.Error("history: unreadable tag record; starting it again", "ref", ref, "err", err)
			}
		}
		tag = old
		tag.Ref = ref
		pushedBy := ""
		if by.Pushed {
			pushedBy = by.Run
		}
		switch {
		case !found:
			tag = Tag{Ref: ref, Digest: digest, PushedBy: pushedBy}
		case old.Digest != digest:
			tag.Digest, tag.ChangedAfter, tag.ChangedBy, tag.PushedBy = digest, old.Checked, at, pushedBy
		}
		if asked && by.Plan != "" {
			tag.Plan = by.Plan
		}
		if at.After(tag.Checked) {
			tag.Checked = at
		}
		if asked && at.After(tag.Asked) {
			tag.Asked = at
		}
		data, err := json.Marshal(tag)
		if err != nil {
			return err
		}
		return b.Put([]byte(ref), data)
	})
	if err != nil {
		return Tag{}, fmt.Errorf("record digest of %s: %w", ref, err)
	}
	return tag, nil
}

// ForgetTags deletes the records of the tags no run asked for since before: a tag a plan
// stopped watching (a Python version dropped from the tree) does not stay in the store for
// ever. It returns how many it deleted.
func (s *Store) ForgetTags(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketTags))
		if b == nil {
			return nil
		}
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var t Tag
			if err := json.Unmarshal(v, &t); err != nil || t.LastAsked().Before(before) {
				stale = append(stale, slices.Clone(k)) // an unreadable record goes too
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(stale)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("forget watched tags asked for before %s: %w", before.Format(time.RFC3339), err)
	}
	return n, nil
}

// Tags returns the watched tags' records, by ref.
func (s *Store) Tags() (map[string]Tag, error) {
	out := map[string]Tag{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketTags))
		if b == nil { // a read-only store an older refreshd wrote
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var t Tag
			if err := json.Unmarshal(v, &t); err != nil {
				s.log.Error("history: skipping an unreadable tag record", "ref", string(k), "err", err)
				return nil
			}
			out[string(k)] = t
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read watched tags: %w", err)
	}
	return out, nil
}
