package history

import (
	"encoding/json"
	"fmt"
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
}

// ObserveTag records that ref has digest ("" for absent) at time at and returns the
// updated record. A digest different from the one recorded is a change made between the
// previous look and at.
func (s *Store) ObserveTag(ref, digest string, at time.Time) (Tag, error) {
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
		switch {
		case !found:
			tag = Tag{Ref: ref, Digest: digest}
		case old.Digest != digest:
			tag.Digest, tag.ChangedAfter, tag.ChangedBy = digest, old.Checked, at
		}
		if at.After(tag.Checked) {
			tag.Checked = at
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
