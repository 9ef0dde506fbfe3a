package history

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A run's step summary is kept beside its record, in the same transaction as every change
// of a step, so listings and pages read a few hundred bytes per run instead of decoding
// every step (a run of 10,000 instances is megabytes of JSON):
//
//	summaries: run id -> JSON {total, counts}           (every run)
//	groups:    run id -> bucket: step id -> JSON StepGroup
//
// A store written before summaries existed gets them computed once when Open finds the
// summaries bucket missing; a record without one (read-only open of such a store) has it
// computed from its steps when read.
const (
	bucketSummaries = "summaries"
	bucketGroups    = "groups"
)

// StepSummary counts a run's step instances by status, in all and per step.
type StepSummary struct {
	Total  int            `json:"total"`
	Counts map[Status]int `json:"counts,omitempty"`
	// Groups are the run's steps (a matrix step's instances together), in the order of
	// their first instance; only a run's page reads them (RunPart), listings leave them out.
	Groups []StepGroup `json:"groups,omitempty"`
}

// StepGroup is one step of a run: how many instances it has, by status, and the index of
// the first one in the run's steps.
type StepGroup struct {
	Step   string         `json:"step"`
	First  int            `json:"first"`
	Total  int            `json:"total"`
	Counts map[Status]int `json:"counts,omitempty"`
	// Start and End span the step's instances: the first start and the last end, so
	// End-Start is the wall time the step took in the run (the dashboard's trends).
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// StepOf is the step id of an instance id: "build[3.12,linux/amd64]" is of step "build".
func StepOf(instance string) string {
	if i := strings.IndexByte(instance, '['); i > 0 {
		return instance[:i]
	}
	return instance
}

// StatusOrder is the order statuses are listed in wherever counts are shown.
var StatusOrder = []Status{StatusSucceeded, StatusFailed, StatusInterrupted, StatusRunning, StatusWaiting, StatusSkipped}

// String is "12 succeeded, 1 failed, 3 skipped", in StatusOrder.
func (s *StepSummary) String() string {
	if s == nil {
		return ""
	}
	return countsString(s.Counts)
}

func countsString(counts map[Status]int) string {
	var parts []string
	for _, st := range StatusOrder {
		if c := counts[st]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, st))
		}
	}
	for st, c := range counts { // a status this refreshd does not know, from a newer one
		if c > 0 && !slices.Contains(StatusOrder, st) {
			parts = append(parts, fmt.Sprintf("%d %s", c, st))
		}
	}
	return strings.Join(parts, ", ")
}

// stepHead is what a summary needs of a stored step: decoding only these fields skips the
// attempts, caches and changes that make up most of a step's bytes.
type stepHead struct {
	Instance string    `json:"instance"`
	Status   Status    `json:"status"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

func bump(counts *map[Status]int, st Status, d int) {
	if *counts == nil {
		*counts = map[Status]int{}
	}
	(*counts)[st] += d
	if (*counts)[st] <= 0 {
		delete(*counts, st)
	}
}

// summaryTx changes the summary of one run within a write transaction: load it, apply each
// step's change, store it.
type summaryTx struct {
	tx     *bolt.Tx
	id     string
	total  StepSummary
	groups map[string]*StepGroup
	dirty  map[string]bool
	fresh  bool // counted anew: nothing stored to start from
}

func loadSummaryTx(tx *bolt.Tx, id string) (*summaryTx, error) {
	s := &summaryTx{tx: tx, id: id, groups: map[string]*StepGroup{}, dirty: map[string]bool{}}
	if data := tx.Bucket([]byte(bucketSummaries)).Get([]byte(id)); data != nil {
		if err := json.Unmarshal(data, &s.total); err != nil {
			return nil, fmt.Errorf("decode step summary of run %s: %w", id, err)
		}
	}
	return s, nil
}

func (s *summaryTx) group(step string) (*StepGroup, error) {
	if g := s.groups[step]; g != nil {
		return g, nil
	}
	g := &StepGroup{Step: step, First: -1}
	if b := s.storedGroups(); b != nil {
		if data := b.Get([]byte(step)); data != nil {
			if err := json.Unmarshal(data, g); err != nil {
				return nil, fmt.Errorf("decode step summary of run %s step %s: %w", s.id, step, err)
			}
		}
	}
	s.groups[step] = g
	return g, nil
}

func (s *summaryTx) storedGroups() *bolt.Bucket {
	if s.fresh {
		return nil
	}
	return tx(s.tx, bucketGroups, s.id)
}

// result is the summary counted, groups in the order of their first instance.
func (s *summaryTx) result(withGroups bool) *StepSummary {
	sum := s.total
	if withGroups {
		for _, g := range s.groups {
			sum.Groups = append(sum.Groups, *g)
		}
		slices.SortFunc(sum.Groups, func(a, b StepGroup) int { return cmp.Compare(a.First, b.First) })
	}
	return &sum
}

// Summarize counts steps as the store keeps them counted beside a run (for a run held in
// memory, as the store would list it).
func Summarize(steps []Step) *StepSummary {
	s := &summaryTx{groups: map[string]*StepGroup{}, dirty: map[string]bool{}, fresh: true}
	for i := range steps {
		s.change(i, nil, &steps[i]) // a fresh summary reads nothing stored: no error
	}
	return s.result(true)
}

// change counts step i going from old (nil: a new instance) to st.
func (s *summaryTx) change(i int, old *stepHead, st *Step) error {
	if old != nil {
		g, err := s.group(StepOf(old.Instance))
		if err != nil {
			return err
		}
		s.total.Total--
		bump(&s.total.Counts, old.Status, -1)
		g.Total--
		bump(&g.Counts, old.Status, -1)
		s.dirty[g.Step] = true
	}
	g, err := s.group(StepOf(st.Instance))
	if err != nil {
		return err
	}
	s.total.Total++
	bump(&s.total.Counts, st.Status, 1)
	g.Total++
	bump(&g.Counts, st.Status, 1)
	if g.First < 0 || i < g.First {
		g.First = i
	}
	if !st.Start.IsZero() && (g.Start.IsZero() || st.Start.Before(g.Start)) {
		g.Start = st.Start
	}
	if st.End.After(g.End) {
		g.End = st.End
	}
	s.dirty[g.Step] = true
	return nil
}

func (s *summaryTx) store() error {
	total := s.total
	total.Groups = nil
	data, err := json.Marshal(&total)
	if err != nil {
		return err
	}
	if err := s.tx.Bucket([]byte(bucketSummaries)).Put([]byte(s.id), data); err != nil {
		return err
	}
	if len(s.dirty) == 0 {
		return nil
	}
	b, err := s.tx.Bucket([]byte(bucketGroups)).CreateBucketIfNotExists([]byte(s.id))
	if err != nil {
		return err
	}
	for step := range s.dirty {
		g := s.groups[step]
		if g.Total <= 0 {
			if err := b.Delete([]byte(step)); err != nil {
				return err
			}
			continue
		}
		data, err := json.Marshal(g)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(step), data); err != nil {
			return err
		}
	}
	return nil
}

// tx is the nested bucket sub of the top-level bucket top, or nil.
func tx(t *bolt.Tx, top, sub string) *bolt.Bucket {
	b := t.Bucket([]byte(top))
	if b == nil {
		return nil
	}
	return b.Bucket([]byte(sub))
}

// deleteSummary removes a run's summary (its record is being replaced or deleted).
func deleteSummary(t *bolt.Tx, id string) error {
	if err := t.Bucket([]byte(bucketSummaries)).Delete([]byte(id)); err != nil {
		return err
	}
	if groups := t.Bucket([]byte(bucketGroups)); groups.Bucket([]byte(id)) != nil {
		return groups.DeleteBucket([]byte(id))
	}
	return nil
}

// putSummary replaces a run's summary with the counts of steps.
func putSummary(t *bolt.Tx, id string, steps []Step) error {
	if err := deleteSummary(t, id); err != nil {
		return err
	}
	s := &summaryTx{tx: t, id: id, groups: map[string]*StepGroup{}, dirty: map[string]bool{}, fresh: true}
	for i := range steps {
		if err := s.change(i, nil, &steps[i]); err != nil {
			return err
		}
	}
	return s.store()
}

// readSummary is the stored summary of run id, with its groups when withGroups; nil when
// the run has none stored (a read-only store written before summaries).
func readSummary(t *bolt.Tx, id string, withGroups bool) (*StepSummary, error) {
	b := t.Bucket([]byte(bucketSummaries))
	if b == nil {
		return nil, nil
	}
	data := b.Get([]byte(id))
	if data == nil {
		return nil, nil
	}
	sum := new(StepSummary)
	if err := json.Unmarshal(data, sum); err != nil {
		return nil, fmt.Errorf("decode step summary of run %s: %w", id, err)
	}
	if !withGroups {
		return sum, nil
	}
	if gb := tx(t, bucketGroups, id); gb != nil {
		err := gb.ForEach(func(k, v []byte) error {
			var g StepGroup
			if err := json.Unmarshal(v, &g); err != nil {
				return fmt.Errorf("decode step summary of run %s step %s: %w", id, k, err)
			}
			sum.Groups = append(sum.Groups, g)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(sum.Groups, func(a, b StepGroup) int { return cmp.Compare(a.First, b.First) })
	return sum, nil
}

// computeSummary counts a run's steps from its records, decoding only their instance and
// status: the fallback for a run without a stored summary.
func computeSummary(t *bolt.Tx, id string, head []byte, withGroups bool) (*StepSummary, error) {
	s, err := countSteps(t, id, head)
	if err != nil {
		return nil, err
	}
	return s.result(withGroups), nil
}

// countSteps is a fresh summary of run id's stored steps, ready to store.
func countSteps(t *bolt.Tx, id string, head []byte) (*summaryTx, error) {
	s := &summaryTx{tx: t, id: id, groups: map[string]*StepGroup{}, dirty: map[string]bool{}, fresh: true}
	err := eachStepHead(t, id, head, func(i int, h stepHead) error {
		return s.change(i, nil, &Step{Instance: h.Instance, Status: h.Status, Start: h.Start, End: h.End})
	})
	return s, err
}

// eachStepHead calls fn with the instance and status of each step of run id, in order:
// from its steps bucket, or from the steps inline in head (records written before steps
// had their own bucket).
func eachStepHead(t *bolt.Tx, id string, head []byte, fn func(int, stepHead) error) error {
	if b := tx(t, bucketSteps, id); b != nil {
		i := 0
		return b.ForEach(func(k, v []byte) error {
			var h stepHead
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("decode run %s step %x: %w", id, k, err)
			}
			err := fn(i, h)
			i++
			return err
		})
	}
	var inline struct {
		Steps []stepHead `json:"steps"`
	}
	if err := json.Unmarshal(head, &inline); err != nil {
		return fmt.Errorf("decode run %s: %w", id, err)
	}
	for i, h := range inline.Steps {
		if err := fn(i, h); err != nil {
			return err
		}
	}
	return nil
}

// migrateSummaries stores the summary of every run that has none: once, when Open finds a
// store written before summaries. An unreadable run is left for the listings to skip.
func migrateSummaries(t *bolt.Tx) error {
	var ids [][]byte
	runs := t.Bucket([]byte(bucketRuns))
	sums := t.Bucket([]byte(bucketSummaries))
	err := runs.ForEach(func(k, _ []byte) error {
		if sums.Get(k) == nil {
			ids = append(ids, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range ids {
		sum, err := countSteps(t, string(k), runs.Get(k))
		if err != nil {
			continue
		}
		if err := sum.store(); err != nil {
			return err
		}
	}
	return nil
}

// instancePrefix is how a stored step whose instance is instance begins: Step's first
// field is its instance, so a step is found by comparing bytes, without decoding the
// others.
func instancePrefix(instance string) []byte {
	q, _ := json.Marshal(instance)
	return append([]byte(`{"instance":`), q...)
}

func isInstance(v, prefix []byte) bool {
	return bytes.HasPrefix(v, prefix) && len(v) > len(prefix) && (v[len(prefix)] == ',' || v[len(prefix)] == '}')
}
