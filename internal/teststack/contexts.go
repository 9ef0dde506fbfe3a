package teststack

import (
	"os"
	"path/filepath"
	"testing"
)

// ScratchContext writes a build context whose Dockerfile is FROM scratch plus COPY of the
// given files (name -> content). It builds for any platform on any node without a network.
func ScratchContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	df := "FROM scratch\n"
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatalf("write context file %s: %v", name, err)
		}
		df += "COPY " + name + " /" + name + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatalf("write Dockerfile: %v", err)
	}
	return dir
}
