package history

import (
	"os"
	"testing"
)

// The store is readable by the daemon's group (operators read the history with
// `refreshd history --state` when no daemon runs), and a store an older refreshd made 0600
// becomes so when opened for writing.
func TestStoreFileMode(t *testing.T) {
	s, path := openT(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o040 == 0 {
		t.Fatalf("new store: mode %v (%v), want group-readable", fi.Mode(), err)
	}
	s.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("a read-only open changed the mode to %v", fi.Mode().Perm())
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("old store reopened: mode %v, want 0640", fi.Mode().Perm())
	}
}
