package main

import (
	"os"
	"path/filepath"
	"testing"
)

// history and logs read the system daemon's state directory when its history is readable,
// and the user's own otherwise.
func TestReadableState(t *testing.T) {
	system, local := t.TempDir(), t.TempDir()
	if got := readableState(system, local); got != local {
		t.Errorf("no history in %s: got %s, want the local state", system, got)
	}
	if err := os.WriteFile(filepath.Join(system, "history.db"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if got := readableState(system, local); got != system {
		t.Errorf("readable history in %s: got %s, want it", system, got)
	}
	if got := readableState(filepath.Join(system, "missing"), local); got != local {
		t.Errorf("missing system state: got %s, want the local state", got)
	}
}
