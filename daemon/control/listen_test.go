package control

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestListenPlacesSocket checks the socket Listen leaves: at the path, mode 0660 whatever
// the umask, no staging directory left beside it, a live daemon's socket refused, and the
// file removed on Close.
func TestListenPlacesSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "refreshd.sock")
	l, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %s: %v, mode %v; want a 0660 socket", sock, err, fi.Mode())
	}
	entries, err := os.ReadDir(filepath.Dir(sock))
	if err != nil || len(entries) != 1 {
		t.Errorf("socket directory holds %v (%v), want only the socket", entries, err)
	}
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	if _, err := Listen(sock, ""); err == nil {
		t.Error("second Listen on a live socket succeeded")
	}
	c, err := net.Dial("unix", sock)
	if err == nil {
		c.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}
}
