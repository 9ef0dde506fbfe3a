package statedir

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestLockNamesHolder(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Dir{Root: dir}.Lock()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dir{Root: dir}.Lock()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by process %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	again, err := Dir{Root: dir}.Lock()
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}
