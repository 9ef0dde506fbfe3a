package teststack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// buildRefreshd builds the refreshd binary into a new temporary directory, for a package's
// TestMain: tests drive the real binary as a separate process. The directory is readable by
// every user (a socket access test runs the binary as another user); remove it when the
// tests are done.
func buildRefreshd() (bin, dir string, err error) {
	dir, err = os.MkdirTemp("", "refreshd-bin-")
	if err != nil {
		return "", "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	bin = filepath.Join(dir, "refreshd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/refreshd/refreshd/cmd/refreshd").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("build refreshd: %w\n%s", err, out)
	}
	return bin, dir, nil
}

// RunWithRefreshd is a TestMain body for packages that drive the binary: it builds
// refreshd, points *bin at it, runs the tests and removes the build. It returns the exit
// code for os.Exit.
func RunWithRefreshd(m *testing.M, bin *string) int {
	path, dir, err := buildRefreshd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = path
	return m.Run()
}
