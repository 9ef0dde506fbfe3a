package history

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrNotFound is wrapped by lookups of a run that is not in the store.
var ErrNotFound = errors.New("not found")

// ErrLocked is wrapped by Open when another process holds the store file.
var ErrLocked = errors.New("history store in use by another process")

const (
	bucketRuns  = "runs"  // run id -> JSON Run without its steps
	bucketSteps = "steps" // run id -> bucket: step index (4 bytes, big endian) -> JSON Step
	bucketMarks = "marks" // plan -> last scheduled time (RFC 3339, nanoseconds)
	bucketTags  = "tags"  // image ref -> JSON Tag: the digest refreshd last saw, and since when
)

// openTimeout bounds the wait for bbolt's file lock: a second daemon (or a run --local next
// to a daemon) on the same state directory fails in a second with a clear error instead of
// hanging.
const openTimeout = time.Second

// Store is the history of runs in one bbolt file. bbolt was chosen because it is a single
// file, pure Go (no cgo, one static binary), transactional with fsync on commit (a record
// written before a crash is there after it) and takes an exclusive file lock, so two
// processes cannot corrupt it. Every run is one JSON value keyed by its id; retention keeps
// the number of runs per plan small, so listing by decoding is cheap.
//
// A record that cannot be decoded (a bad disk block, a hand edit) is skipped by every
// listing and logged with its key, so one damaged run never stops the daemon from starting
// or the history from being listed; only Run(id) of that very record returns the error. The
// record itself is left in place (Prune does not delete it) for someone to inspect.
//
// A Store is safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	log      *slog.Logger
	recovery *Recovery
}

// Option configures Open and OpenReadOnly.
type Option func(*Store)

// WithLogger sets where the store reports records it had to skip; the default is
// slog.Default(), so such a report is never lost.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

func newStore(db *bolt.DB, path string, opts []Option) *Store {
	s := &Store{db: db, path: path, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open opens (creating if needed) the store at path. A store that fails the consistency
// check is moved aside (path.corrupt-TIME) and an empty one is started in its place, so a
// damaged file costs the history but never the daemon; Recovered says so.
func Open(path string, opts ...Option) (*Store, error) {
	bopts := &bolt.Options{Timeout: openTimeout}
	db, err := openChecked(path, bopts)
	var rec *Recovery
	if errors.Is(err, ErrCorrupt) {
		now := time.Now()
		movedTo, merr := moveAside(path, now)
		if merr != nil {
			return nil, fmt.Errorf("open history %s: %w; %w", path, err, merr)
		}
		rec = &Recovery{MovedTo: movedTo, At: now.UTC(), Err: err.Error()}
		db, err = openChecked(path, bopts)
	}
	if err != nil {
		return nil, openError(path, err, "is a refreshd daemon or run --local using this state directory?")
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketRuns, bucketSteps, bucketMarks, bucketTags, bucketSummaries, bucketGroups} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		if err := migrateSummaries(tx); err != nil {
			return err
		}
		return migratePins(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise history %s: %w", path, err)
	}
	s := newStore(db, path, opts)
	if rec != nil {
		s.recovery = rec
		s.log.Error("history store was corrupt; moved it aside and started an empty one",
			"path", path, "moved_to", rec.MovedTo, "err", rec.Err)
	}
	return s, nil
}

// OpenReadOnly opens an existing store for reading (refreshd history and logs). Readers
// share the file; a writer (a daemon or run --local) excludes them, so this fails with
// ErrLocked while one runs. A corrupt store is an error wrapping ErrCorrupt, left in place.
func OpenReadOnly(path string, opts ...Option) (*Store, error) {
	db, err := openChecked(path, &bolt.Options{Timeout: openTimeout, ReadOnly: true})
	if err != nil {
		return nil, openError(path, err, "a refreshd daemon or run --local is using it; ask the daemon instead")
	}
	return newStore(db, path, opts), nil
}

func openError(path string, err error, lockedHint string) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("open history %s: %w (%s)", path, ErrLocked, lockedHint)
	}
	return fmt.Errorf("open history %s: %w", path, err)
}

// Recovered reports the corrupt store Open moved aside, or nil.
func (s *Store) Recovered() *Recovery { return s.recovery }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Close closes the store file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close history %s: %w", s.path, err)
	}
	return nil
}

// SaveRun inserts or replaces r with all its steps.
func (s *Store) SaveRun(r *Run) error {
	if r.ID == "" {
		return errors.New("save run: empty run id")
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return putRun(tx, r) })
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.ID, err)
	}
	return nil
}

// SaveProgress records head (status, times, reason, warnings; its Steps are ignored) and
// only the steps given by index, in one transaction: a run's progress costs what changed,
// not the whole record, so a run of 10,000 instances saves in constant time per step.
func (s *Store) SaveProgress(head *Run, steps map[int]Step) error {
	if head.ID == "" {
		return errors.New("save run progress: empty run id")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putHead(tx, head); err != nil {
			return err
		}
		b, err := tx.Bucket([]byte(bucketSteps)).CreateBucketIfNotExists([]byte(head.ID))
		if err != nil {
			return err
		}
		sum, err := loadSummaryTx(tx, head.ID)
		if err != nil {
			return err
		}
		for i, st := range steps {
			var old *stepHead
			if i >= 0 && i <= math.MaxUint32 {
				if data := b.Get(stepKey(i)); data != nil {
					old = new(stepHead)
					if err := json.Unmarshal(data, old); err != nil {
						return fmt.Errorf("decode run %s step %d: %w", head.ID, i, err)
					}
				}
			}
			if err := putStep(b, i, &st); err != nil {
				return err
			}
			if err := indexPins(tx, head, &st); err != nil {
				return err
			}
			if err := sum.change(i, old, &st); err != nil {
				return err
			}
		}
		return sum.store()
	})
	if err != nil {
		return fmt.Errorf("save progress of run %s: %w", head.ID, err)
	}
	return nil
}

// putRun replaces the run and all its steps.
func putRun(tx *bolt.Tx, r *Run) error {
	if err := putHead(tx, r); err != nil {
		return err
	}
	parent := tx.Bucket([]byte(bucketSteps))
	if parent.Bucket([]byte(r.ID)) != nil {
		if err := parent.DeleteBucket([]byte(r.ID)); err != nil {
			return err
		}
	}
	b, err := parent.CreateBucket([]byte(r.ID))
	if err != nil {
		return err
	}
	for i := range r.Steps {
		if err := putStep(b, i, &r.Steps[i]); err != nil {
			return err
		}
		if err := indexPins(tx, r, &r.Steps[i]); err != nil {
			return err
		}
	}
	return putSummary(tx, r.ID, r.Steps)
}

func putHead(tx *bolt.Tx, r *Run) error {
	head := *r
	head.Steps, head.Summary = nil, nil
	data, err := json.Marshal(&head)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketRuns)).Put([]byte(r.ID), data)
}

func putStep(b *bolt.Bucket, i int, st *Step) error {
	if i < 0 || i > math.MaxUint32 {
		return fmt.Errorf("step index %d out of range", i)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return b.Put(stepKey(i), data)
}

func stepKey(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

// getRun decodes the run stored under id with its steps. Records written before steps had
// their own bucket keep them inline, and still read.
func getRun(tx *bolt.Tx, id string, data []byte) (*Run, error) {
	r, err := decodeRun(id, data)
	if err != nil {
		return nil, err
	}
	parent := tx.Bucket([]byte(bucketSteps)) // nil in a read-only store an older refreshd wrote
	if parent == nil {
		return r, nil
	}
	b := parent.Bucket([]byte(id))
	if b == nil {
		return r, nil
	}
	r.Steps = nil
	err = b.ForEach(func(k, v []byte) error {
		st, err := decodeStep(id, k, v)
		if err == nil {
			r.Steps = append(r.Steps, *st)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func decodeStep(id string, k, v []byte) (*Step, error) {
	st := new(Step)
	if err := json.Unmarshal(v, st); err != nil {
		return nil, fmt.Errorf("decode run %s step %x: %w", id, k, err)
	}
	return st, nil
}

// Run returns the run with this id, or an error wrapping ErrNotFound.
func (s *Store) Run(id string) (*Run, error) {
	return s.viewRun(id, func(tx *bolt.Tx, data []byte) (*Run, error) { return getRun(tx, id, data) })
}

// viewRun reads run id's record with read, in a read transaction; a missing run is an
// error wrapping ErrNotFound.
func (s *Store) viewRun(id string, read func(tx *bolt.Tx, data []byte) (*Run, error)) (*Run, error) {
	var r *Run
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte(bucketRuns)).Get([]byte(id))
		if data == nil {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		var err error
		r, err = read(tx, data)
		return err
	})
	return r, err
}

// Runs returns the runs of plan ("" for every plan), newest first, at most limit of them
// (limit <= 0: all), whole: every step decoded. Listings read Heads.
func (s *Store) Runs(plan string, limit int) ([]*Run, error) { return s.list(plan, limit, true) }

// list returns plan's runs, newest first: whole records, or headers with their summary.
// Only the runs of plan are decoded past their header.
func (s *Store) list(plan string, limit int, whole bool) ([]*Run, error) {
	var runs []*Run
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketRuns)).ForEach(func(k, v []byte) error {
			r, ok := s.decodeHeadListed(k, v)
			if !ok || (plan != "" && r.Plan != plan) {
				return nil
			}
			if whole {
				if r, ok = s.decodeListed(tx, k, v); ok {
					runs = append(runs, r)
				}
				return nil
			}
			sum, err := headSummary(tx, r.ID, v, false)
			if err != nil {
				s.log.Error("skipping a run whose step summary cannot be read", "run", r.ID, "path", s.path, "err", err)
				return nil
			}
			r.Summary = sum
			runs = append(runs, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	sortNewestFirst(runs)
	if limit > 0 && len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}

// InterruptRunning marks every run still recorded as running (its process died without
// finishing it: a crash, kill -9, power loss) as interrupted with reason, and its running
// steps and attempts too. Call it at start-up while holding the state directory lock, so
// no live run is touched. It returns the ids of the runs it marked.
func (s *Store) InterruptRunning(reason string) ([]string, error) {
	var ids []string
	now := time.Now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketRuns))
		var changes []*Run
		err := b.ForEach(func(k, v []byte) error {
			r, ok := s.decodeListed(tx, k, v)
			if !ok {
				return nil
			}
			if r.Status != StatusRunning {
				return nil
			}
			markInterrupted(r, reason, now)
			changes = append(changes, r)
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil {
			return err
		}
		// Not inside ForEach: bbolt forbids changing a bucket while iterating it.
		for _, r := range changes {
			if err := putRun(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark runs left running as interrupted: %w", err)
	}
	return ids, nil
}

// Finish records the end of run id when it could not be recorded as it happened (see
// statedir's outcome files): status and reason on the run, and each step it left running
// or waiting interrupted.
func (s *Store) Finish(id string, status Status, reason string, end time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte(bucketRuns)).Get([]byte(id))
		if data == nil {
			return ErrNotFound
		}
		r, err := getRun(tx, id, data)
		if err != nil {
			return err
		}
		markInterrupted(r, "the run ended before this step's end was recorded", end)
		r.Status, r.Reason, r.End = status, reason, end
		return putRun(tx, r)
	})
	if err != nil {
		return fmt.Errorf("record the end of run %s: %w", id, err)
	}
	return nil
}

func markInterrupted(r *Run, reason string, now time.Time) {
	r.Status = StatusInterrupted
	r.Reason = reason
	if r.End.IsZero() {
		r.End = now
	}
	for i := range r.Steps {
		st := &r.Steps[i]
		switch st.Status {
		case StatusRunning:
			st.Status, st.Reason = StatusInterrupted, reason
			if st.End.IsZero() {
				st.End = now
			}
			for j := range st.Attempts {
				at := &st.Attempts[j]
				if at.End.IsZero() {
					at.End, at.ExitCode, at.Error, at.Interrupted = now, -1, reason, true
				}
			}
		case StatusWaiting:
			st.Status, st.Reason = StatusInterrupted, "run interrupted before the step started"
		}
	}
}

// Prune deletes the oldest runs of plan beyond the newest keep and returns them, so the
// caller can delete their log files. Running runs are never deleted. Real runs and dry runs
// are counted apart, each kind keeping its newest keep: trying a plan with --dry-run never
// pushes a real run (and the digests and logs it recorded) out of the history, and dry
// runs, kept so `refreshd logs` can show what they would have done, stay bounded too.
func (s *Store) Prune(plan string, keep int) ([]*Run, error) {
	if keep <= 0 {
		return nil, fmt.Errorf("prune runs of %s: keep must be positive, got %d", plan, keep)
	}
	var removed []*Run
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketRuns))
		var runs []*Run
		err := b.ForEach(func(k, v []byte) error {
			r, ok := s.decodeHeadListed(k, v)
			if !ok {
				return nil
			}
			if r.Plan == plan {
				runs = append(runs, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		sortNewestFirst(runs)
		kept := map[bool]int{} // by DryRun
		for _, r := range runs {
			if kept[r.DryRun] < keep {
				kept[r.DryRun]++
				continue
			}
			if r.Status == StatusRunning {
				continue
			}
			// The whole record, for the caller to delete the attempts' log files.
			full, err := getRun(tx, r.ID, b.Get([]byte(r.ID)))
			if err != nil {
				s.log.Error("pruning a run whose steps cannot be read; its log files stay", "run", r.ID, "path", s.path, "err", err)
				full = r
			}
			r = full
			if err := b.Delete([]byte(r.ID)); err != nil {
				return err
			}
			if steps := tx.Bucket([]byte(bucketSteps)); steps.Bucket([]byte(r.ID)) != nil {
				if err := steps.DeleteBucket([]byte(r.ID)); err != nil {
					return err
				}
			}
			if err := deleteSummary(tx, r.ID); err != nil {
				return err
			}
			removed = append(removed, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune runs of %s: %w", plan, err)
	}
	return removed, nil
}

// LastScheduled is the last scheduled time recorded for plan; zero if none.
func (s *Store) LastScheduled(plan string) (time.Time, error) {
	var t time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket([]byte(bucketMarks)).Get([]byte(plan))
		if data == nil {
			return nil
		}
		return t.UnmarshalText(data)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read last scheduled time of %s: %w", plan, err)
	}
	return t, nil
}

// SetLastScheduled records the last scheduled time of plan.
func (s *Store) SetLastScheduled(plan string, t time.Time) error {
	data, err := t.UTC().MarshalText()
	if err != nil {
		return fmt.Errorf("record last scheduled time of %s: %w", plan, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMarks)).Put([]byte(plan), data)
	})
	if err != nil {
		return fmt.Errorf("record last scheduled time of %s: %w", plan, err)
	}
	return nil
}

// decodeListed decodes a run met while iterating; an undecodable one is logged with its key
// and reported as not ok, for the caller to skip.
func (s *Store) decodeListed(tx *bolt.Tx, k, v []byte) (*Run, bool) {
	r, err := getRun(tx, string(k), v)
	if err != nil {
		s.log.Error("skipping an unreadable run record in the history", "run", string(k), "path", s.path, "err", err)
		return nil, false
	}
	return r, true
}

// decodeHeadListed decodes the header of a run met while iterating (its steps left out);
// an undecodable one is logged and reported as not ok.
func (s *Store) decodeHeadListed(k, v []byte) (*Run, bool) {
	r, err := decodeRun(string(k), v)
	if err != nil {
		s.log.Error("skipping an unreadable run record in the history", "run", string(k), "path", s.path, "err", err)
		return nil, false
	}
	r.Steps = nil // inline in a record written before steps had their own bucket
	return r, true
}

func decodeRun(id string, data []byte) (*Run, error) {
	r := new(Run)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	return r, nil
}

// sortNewestFirst orders by start time, then id (ids are sortable by time) for ties.
func sortNewestFirst(runs []*Run) {
	slices.SortFunc(runs, func(a, b *Run) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		switch {
		case a.ID > b.ID:
			return -1
		case a.ID < b.ID:
			return 1
		}
		return 0
	})
}
