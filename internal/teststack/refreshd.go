package teststack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildRefreshd builds the refreshd binary into a new temporary directory, for a package's
// TestMain: tests drive the real binary as a separate process. The directory is readable by
// every user (a socket access test runs the binary as another user); remove it when the
// tests are done.
func BuildRefreshd() (bin, dir string, err error) {
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
