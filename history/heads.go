package history

import (
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// Heads returns the runs of plan ("" for every plan), newest first, at most limit of them
// (limit <= 0: all), as headers: without their steps, with Summary counting them. A
// listing costs the runs' headers and summaries, whatever the size of the runs.
func (s *Store) Heads(plan string, limit int) ([]*Run, error) { return s.list(plan, limit, false) }

// headSummary is the stored summary of a run, or one counted from its steps when none is
// stored (a read-only open of a store written before summaries).
func headSummary(tx *bolt.Tx, id string, head []byte, withGroups bool) (*StepSummary, error) {
	sum, err := readSummary(tx, id, withGroups)
	if err != nil || sum != nil {
		return sum, err
	}
	return computeSummary(tx, id, head, withGroups)
}

// RunPart returns run id's header with the summary of its steps (groups included) and at
// most limit of its steps from index offset on in Steps: one page of a run, read in time
// and memory bounded by limit, not by the run's size. An offset past the end gives no
// steps.
func (s *Store) RunPart(id string, offset, limit int) (*Run, error) {
	if offset < 0 || limit <= 0 {
		return nil, fmt.Errorf("read run %s: steps from %d, %d of them: want offset >= 0 and limit > 0", id, offset, limit)
	}
	return s.viewRun(id, func(tx *bolt.Tx, data []byte) (*Run, error) {
		r, err := decodeRun(id, data)
		if err != nil {
			return nil, err
		}
		inline := r.Steps
		r.Steps = nil
		if r.Summary, err = headSummary(tx, id, data, true); err != nil {
			return nil, err
		}
		b := tx.Bucket([]byte(bucketSteps)).Bucket([]byte(id))
		if b == nil { // steps inline (an old record)
			if offset < len(inline) {
				r.Steps = inline[offset:min(len(inline), offset+limit)]
			}
			return r, nil
		}
		if offset > math.MaxUint32 {
			return r, nil
		}
		c := b.Cursor()
		for k, v := c.Seek(stepKey(offset)); k != nil && len(r.Steps) < limit; k, v = c.Next() {
			st, err := decodeStep(id, k, v)
			if err != nil {
				return nil, err
			}
			r.Steps = append(r.Steps, *st)
		}
		return r, nil
	})
}

// Head returns run id's header (no steps, Summary without groups), or an error wrapping
// ErrNotFound.
func (s *Store) Head(id string) (*Run, error) {
	return s.viewRun(id, func(tx *bolt.Tx, data []byte) (*Run, error) {
		r, err := decodeRun(id, data)
		if err != nil {
			return nil, err
		}
		r.Steps = nil
		r.Summary, err = headSummary(tx, id, data, false)
		return r, err
	})
}

// Step returns the step instance of run id with its index in the run; nil (and -1) when
// the run has no such instance, an error wrapping ErrNotFound when there is no run. Only the matching step is decoded: the others are told apart by
// their first bytes.
func (s *Store) Step(id, instance string) (int, *Step, error) {
	idx, st := -1, (*Step)(nil)
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte(bucketRuns)).Get([]byte(id))
		if data == nil {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		b := tx.Bucket([]byte(bucketSteps)).Bucket([]byte(id))
		if b == nil { // steps inline (an old record)
			r, err := decodeRun(id, data)
			if err != nil {
				return err
			}
			for i := range r.Steps {
				if r.Steps[i].Instance == instance {
					idx, st = i, &r.Steps[i]
					return nil
				}
			}
			return nil
		}
		prefix := instancePrefix(instance)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) == 4 && isInstance(v, prefix) {
				var err error
				st, err = decodeStep(id, k, v)
				idx = int(binary.BigEndian.Uint32(k))
				return err
			}
		}
		return nil
	})
	if err != nil {
		return -1, nil, err
	}
	return idx, st, nil
}
