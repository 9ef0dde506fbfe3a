package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/refreshd/refreshd/statedir"
)

// lockBuilder takes DIR/locks/builder-NAME.lock, shared by every plan and daemon using this
// state directory, waiting until ctx is done. Builder names are already restricted by the plan loader; the
// name is still made safe for a file name.
func lockBuilder(ctx context.Context, stateDir, name string) (unlock func(), err error) {
	return lockPath(ctx, statedir.Dir{Root: stateDir}.BuilderLock(name), "builder "+name)
}

// lockCheckout takes the lock of checkout directory dir (statedir.Dir.CheckoutLock).
func lockCheckout(ctx context.Context, stateDir, dir string) (unlock func(), err error) {
	return lockPath(ctx, statedir.Dir{Root: stateDir}.CheckoutLock(dir), "checkout "+dir)
}

// lockPath takes the flock at path (what says what it guards, for errors), waiting until
// ctx is done.
func lockPath(ctx context.Context, path, what string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create locks directory: %w", err)
	}
	l := flock.New(path)
	ok, err := l.TryLockContext(ctx, 250*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", what, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: not acquired", what)
	}
	return func() { l.Unlock() }, nil
}
