package history

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt is wrapped by OpenReadOnly, and reported by Open's Recovery, when the store file
// fails bbolt's consistency check or makes bbolt panic: a truncated file, or garbage in a
// meta, branch, leaf or freelist page.
var ErrCorrupt = errors.New("history store is corrupt")

// Recovery says that Open found the store corrupt and started an empty one: where the
// corrupt file was moved, when, and what was wrong with it. The daemon shows it in status
// and as a metric, so losing the history is never silent.
type Recovery struct {
	MovedTo string    `json:"moved_to"`
	At      time.Time `json:"at"`
	Err     string    `json:"error"`
}

// openChecked opens path with bbolt and checks every page reachable from it, turning the
// panics bbolt raises on damaged pages (and memory faults on a file shorter than its pages
// say) into an error wrapping ErrCorrupt, so a bad disk block can never crash-loop the
// daemon under Restart=on-failure.
// fileMode is the store file's mode.
const fileMode = 0o640

func openChecked(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	// 0640: the daemon's group (operators, `usermod -aG refreshd`) may read the history
	// with `refreshd history --state` while no daemon runs; the umask narrows it further.
	db, err = bolt.Open(path, fileMode, opts)
	if err != nil {
		if isCorruptOpenError(err) {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, err
	}
	if opts == nil || !opts.ReadOnly {
		// A store made by an older refreshd is 0600: give the group its read access.
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == 0o600 {
			os.Chmod(path, fileMode)
		}
	}
	if err := check(db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// isCorruptOpenError tells bbolt's refusals of a damaged file (bad meta pages, wrong size)
// from the errors that are not about the content (permissions, a held lock).
func isCorruptOpenError(err error) bool {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return false
	}
	return !errors.Is(err, berrors.ErrTimeout) && !errors.Is(err, os.ErrPermission)
}

// check walks every bucket and record in this goroutine first (where a fault on a garbage
// page is recovered by openChecked), then runs bbolt's own Check, which also verifies the
// freelist against the reachable pages: a corrupt freelist would otherwise hand out pages
// still in use and destroy records on the next write.
func check(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		var touched int // read every byte's page so a short file faults here, not later
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				for _, c := range v {
					touched += int(c)
				}
				touched += len(k)
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		var first error
		for e := range tx.Check() { // drain: Check's goroutine blocks until read
			if first == nil {
				first = e
			}
		}
		if first != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, first)
		}
		return nil
	})
}

// moveAside renames a corrupt store out of the way, keeping it for inspection, and returns
// its new name.
func moveAside(path string, now time.Time) (string, error) {
	to := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("move corrupt history %s aside: %w", path, err)
	}
	return to, nil
}
