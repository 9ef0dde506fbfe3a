package testkit

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is the -update flag of every test binary that imports testkit: Golden then
// rewrites its files instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the tests produce")

// Golden compares got with the golden file at path (relative to the package directory,
// normally testdata/NAME). With -update it writes got there instead, creating directories.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("create the directory of golden file %s: %v", path, err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("write golden file %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update creates it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from what the test produced (go test -update rewrites it after checking)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
