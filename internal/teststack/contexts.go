package teststack

import (
	"os"
	"os/exec"
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

// BusyboxBaseContext writes a context that turns Debian's static busybox into a base image
// (FROM scratch, COPY busybox, install its applets). Built for linux/amd64 and linux/386 it
// gives later Dockerfiles a shell without any network.
func BusyboxBaseContext(t testing.TB) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed for a base image: %v", err)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatalf("read %s: %v", bb, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), data, 0o755); err != nil {
		t.Fatalf("copy busybox: %v", err)
	}
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatalf("write Dockerfile: %v", err)
	}
	return dir
}
