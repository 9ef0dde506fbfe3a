package executor

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gofrs/flock"

	"github.com/refreshd/refreshd/statedir"
)

// lockBuilder takes DIR/locks/builder-NAME.lock, shared by every plan and daemon using this
// state directory, waiting until ctx is done. Builder names are already restricted by the plan loader; the
// name is still made safe for a file name.
func lockBuilder(ctx context.Context, stateDir, name string) (unlock func(), err error) {
	d := statedir.Dir{Root: stateDir}
	if err := os.MkdirAll(d.Locks(), 0o750); err != nil {
		return nil, fmt.Errorf("create locks directory: %w", err)
	}
	l := flock.New(d.BuilderLock(name))
	ok, err := l.TryLockContext(ctx, 250*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock builder %s: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock builder %s: not acquired", name)
	}
	return func() { l.Unlock() }, nil
}
