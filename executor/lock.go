package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// LockState takes the state directory's lock, DIR/refreshd.lock: one daemon or run --local
// per state directory, so two processes never run the same history, workdirs and clones.
// The lock is an flock, released by the kernel when the process dies (kill -9 included), so
// a crash never leaves a stale lock. The holder writes its pid into the file; a refused
// caller's error names it.
func LockState(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "refreshd.lock")
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock state directory %s: %w", dir, err)
	}
	if !ok {
		holder := "another process"
		if data, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				holder = fmt.Sprintf("process %d", pid)
			}
		}
		return nil, fmt.Errorf("state directory %s is in use by %s (a refreshd daemon or run --local; %s is locked)", dir, holder, path)
	}
	// Written after locking, through a separate descriptor: truncating before holding the
	// lock would erase the holder's pid.
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o640); err != nil {
		l.Unlock()
		return nil, fmt.Errorf("record pid in %s: %w", path, err)
	}
	return func() { l.Unlock() }, nil
}

// lockBuilder takes DIR/locks/builder-NAME.lock, shared by every plan and daemon using this
// state directory, waiting until ctx is done. Builder names are already restricted by the plan loader; the
// name is still made safe for a file name.
func lockBuilder(ctx context.Context, stateDir, name string) (unlock func(), err error) {
	dir := filepath.Join(stateDir, "locks")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create locks directory: %w", err)
	}
	l := flock.New(filepath.Join(dir, "builder-"+safeName(name)+".lock"))
	ok, err := l.TryLockContext(ctx, 250*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock builder %s: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock builder %s: not acquired", name)
	}
	return func() { l.Unlock() }, nil
}
