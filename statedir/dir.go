// Package statedir is refreshd's state directory (--state DIR): the one place that names
// every path in it, and that opens it the way both the daemon and `run --local` must
// before they run anything (Open): take its lock, open the run store, stop what an earlier
// refreshd left running, mark its runs interrupted and reconcile their publishes with the
// branch.
//
//	DIR/refreshd.lock              one daemon (or run --local) per state directory
//	DIR/history.db                 the run store (bbolt)
//	DIR/logs/RUN/INSTANCE.N.log    one file per attempt
//	DIR/runs/RUN/                  per-run scratch (buildx metadata files)
//	DIR/locks/                     flock files: builder-NAME.lock, branch-KEY.lock (git)
//	DIR/git/KEY/                   the constraints clone of one repo+branch (git)
//	DIR/work/PLAN/                 default workdir of a plan
package statedir

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// Dir names the paths of one state directory. Run ids, instance ids, plan and builder names
// are made safe for one file name component (SafeName).
type Dir struct {
	Root string // absolute
}

// New is the Dir at root, made absolute (processes run in other working directories).
func New(root string) (Dir, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Dir{}, fmt.Errorf("state directory %s: %w", root, err)
	}
	return Dir{Root: abs}, nil
}

// LockFile is DIR/refreshd.lock.
func (d Dir) LockFile() string { return filepath.Join(d.Root, "refreshd.lock") }

// History is DIR/history.db.
func (d Dir) History() string { return filepath.Join(d.Root, "history.db") }

// RunLogs is DIR/logs/RUN, the attempt logs of one run.
func (d Dir) RunLogs(run string) string { return filepath.Join(d.Root, "logs", SafeName(run)) }

// Log is the log file of attempt n of an instance: DIR/logs/RUN/INSTANCE.N.log.
func (d Dir) Log(run, instance string, n int) string {
	return filepath.Join(d.RunLogs(run), fmt.Sprintf("%s.%d.log", SafeName(instance), n))
}

// RunScratch is DIR/runs/RUN, a run's scratch files.
func (d Dir) RunScratch(run string) string { return filepath.Join(d.Root, "runs", SafeName(run)) }

// Metadata is the buildx metadata file of an instance: DIR/runs/RUN/INSTANCE.json.
func (d Dir) Metadata(run, instance string) string {
	return filepath.Join(d.RunScratch(run), SafeName(instance)+".json")
}

// Locks is DIR/locks.
func (d Dir) Locks() string { return filepath.Join(d.Root, "locks") }

// BuilderLock is DIR/locks/builder-NAME.lock.
func (d Dir) BuilderLock(name string) string {
	return filepath.Join(d.Locks(), "builder-"+SafeName(name)+".lock")
}

// NodeSlotLock is DIR/locks/node-BUILDER-NODE.SLOT.lock: one of the max_parallel build slots
// of a builder's node, held for one build.
func (d Dir) NodeSlotLock(builder, node string, slot int) string {
	return filepath.Join(d.Locks(), fmt.Sprintf("node-%s-%s.%d.lock", SafeName(builder), SafeName(node), slot))
}

// CheckoutLock is DIR/locks/checkout-HASH.lock, the lock of the checkout directory dir (an
// absolute path; the hash keeps any path one safe file name).
func (d Dir) CheckoutLock(dir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return filepath.Join(d.Locks(), "checkout-"+hex.EncodeToString(sum[:8])+".lock")
}

// Git is DIR/git, where git keeps one clone per repository and branch. git is given
// the root (Options.StateDir) and names DIR/git/KEY and DIR/locks/branch-KEY.lock itself.
func (d Dir) Git() string { return filepath.Join(d.Root, "git") }

// Work is DIR/work/PLAN, the workdir of a plan that sets none.
func (d Dir) Work(plan string) string { return filepath.Join(d.Root, "work", SafeName(plan)) }

// SafeName makes s safe as one file name component, and keeps different names different:
// a name made only of letters, digits, "-", "_" and "." (and not "." or "..") is kept;
// any other has the rest replaced by "_" (see Readable) and a hash of the whole name
// appended, so the instances "a b", "a_b" and "a/b" get three log files, not one. Long
// names are cut to stay within a file name's 255 bytes.
func SafeName(s string) string {
	r := Readable(s)
	if r == s && s != "" && s != "." && s != ".." && len(s) <= maxReadable {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	if len(r) > maxReadable {
		r = r[:maxReadable]
	}
	return r + "~" + hex.EncodeToString(sum[:6])
}

// maxReadable leaves room in a 255-byte file name for the hash and suffixes such as
// ".12.log" or ".lock".
const maxReadable = 200

// Readable replaces anything but letters, digits, "-", "_" and "." by "_": a readable form
// for names that need not be unique on their own (run ids carry a time and random suffix).
func Readable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}
