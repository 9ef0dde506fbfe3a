package plan

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

const okPlan = "plan: %s\nschedule: \"0 2 * * *\"\nsteps:\n  - id: s\n    run: [echo, hi]\n"

func writePlan(t *testing.T, dir, name, plan string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadReport is what a load returned, with the temp dir replaced, for a golden file.
func loadReport(dir string, plans []*Plan, err error) string {
	var b strings.Builder
	for _, p := range plans {
		fmt.Fprintf(&b, "plan %s from %s\n", p.Name, filepath.Base(p.File))
	}
	if err != nil {
		b.WriteString(err.Error() + "\n")
	}
	return strings.ReplaceAll(b.String(), dir, "DIR")
}

// A FIFO, a socket or a directory named *.yaml in the plans directory is reported and
// skipped, and never opened for a blocking read: a FIFO with no writer used to hang
// validate and wedge the daemon's reload.
func TestLoadDirSkipsWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	writePlan(t, dir, "a.yaml", fmt.Sprintf(okPlan, "a"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo.yaml", filepath.Join(dir, "link-to-fifo.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		plans, err := LoadDir(dir)
		done <- loadReport(dir, plans, err)
	}()
	select {
	case got := <-done:
		testkit.Golden(t, "testdata/hostile/not-a-file.golden", got)
	case <-time.After(5 * time.Second):
		t.Fatal("LoadDir blocked on a FIFO")
	}
	// Named explicitly, as validate FILE... does.
	plans, err := LoadFiles([]string{filepath.Join(dir, "fifo.yaml"), filepath.Join(dir, "a.yaml")})
	testkit.Golden(t, "testdata/hostile/not-a-file-named.golden", loadReport(dir, plans, err))
}

// A plan file on a file system that never answers (a hung NFS mount) is reported once the
// load's bound passes, and the files after it are reported unread: the load returns.
func TestLoadBoundedOnHungFileSystem(t *testing.T) {
	dir := t.TempDir()
	writePlan(t, dir, "a.yaml", fmt.Sprintf(okPlan, "a"))
	writePlan(t, dir, "b-hangs.yaml", fmt.Sprintf(okPlan, "b"))
	writePlan(t, dir, "c.yaml", fmt.Sprintf(okPlan, "c"))
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rd := newFSReader(300 * time.Millisecond)
	rd.open = func(name string, flag int, perm fs.FileMode) (*os.File, error) {
		if strings.HasSuffix(name, "b-hangs.yaml") {
			<-release // a read stuck in the kernel, as on a hung mount
		}
		return os.OpenFile(name, flag, perm)
	}
	start := time.Now()
	plans, err := loadDir(dir, rd, LoadOptions{})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("load took %v with a 300ms bound", took)
	}
	testkit.Golden(t, "testdata/hostile/hung-fs.golden", loadReport(dir, plans, err))
}

// validate FILE... reads each file once however many are named: 1,600 files of one
// directory used to be read 1,600 times each, once per file named, for the shared builders.
func TestLoadFilesReadsEachFileOnce(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 200 {
		paths = append(paths, writePlan(t, dir, fmt.Sprintf("p%03d.yaml", i), fmt.Sprintf(okPlan, fmt.Sprintf("p%03d", i))))
	}
	writePlan(t, dir, "builders.yaml", "builders:\n  - name: shared\n    nodes: [{name: n0, endpoint: tcp://127.0.0.1:1, platform: linux/amd64}]\n")
	var opens atomic.Int64
	rd := newFSReader(loadTimeout)
	rd.open = func(name string, flag int, perm fs.FileMode) (*os.File, error) {
		opens.Add(1)
		return os.OpenFile(name, flag, perm)
	}
	plans, err := loadFiles(paths, rd, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != len(paths) {
		t.Fatalf("%d plans, want %d", len(plans), len(paths))
	}
	if got, want := opens.Load(), int64(len(paths)+1); got != want {
		t.Errorf("%d files opened for %d plans and one builders file; want %d", got, len(paths), want)
	}
}
