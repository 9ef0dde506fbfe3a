package statedir

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// Lock takes the state directory's lock, DIR/refreshd.lock: one daemon or run --local per
// state directory, so two processes never run the same history, workdirs and clones. The
// lock is an flock, released by the kernel when the process dies (kill -9 included), so a
// crash never leaves a stale lock. The holder writes its pid into the file; a refused
// caller's error names it.
func (d Dir) Lock() (unlock func(), err error) {
	if err := os.MkdirAll(d.Root, 0o750); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", d.Root, err)
	}
	path := d.LockFile()
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock state directory %s: %w", d.Root, err)
	}
	if !ok {
		holder := "another process"
		if data, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				holder = fmt.Sprintf("process %d", pid)
			}
		}
		return nil, fmt.Errorf("state directory %s is in use by %s (a refreshd daemon or run --local; %s is locked)", d.Root, holder, path)
	}
	// Written after locking, through a separate descriptor: truncating before holding the
	// lock would erase the holder's pid.
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o640); err != nil {
		l.Unlock()
		return nil, fmt.Errorf("record pid in %s: %w", path, err)
	}
	return func() { l.Unlock() }, nil
}
