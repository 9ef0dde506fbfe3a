package plan

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// loadTimeout bounds how long one load (a directory, or the files given together) may spend
// reading from the file system. A plan file on a hung network file system must not wedge
// the daemon's start, reload or stop: once the bound passes, what was not read yet is
// reported as not read and skipped.
const loadTimeout = 10 * time.Second

// errNotRegular marks a directory entry that is not a regular file (a FIFO, a socket, a
// device): opening it for reading could block or have side effects, so it is not read.
var errNotRegular = errors.New("not a regular file")

// fsReader reads plan files within one deadline. Each read runs in its own goroutine so
// that the caller can give up on a read that hangs in the kernel; such a goroutine stays
// blocked until the file system answers, which is the best a process can do with a hung
// mount, and it holds nothing of the loader's.
type fsReader struct {
	timeout  time.Duration
	deadline time.Time
	// open is os.OpenFile; tests replace it to simulate a file system that hangs.
	open func(name string, flag int, perm fs.FileMode) (*os.File, error)
}

func newFSReader(timeout time.Duration) *fsReader {
	return &fsReader{timeout: timeout, deadline: time.Now().Add(timeout), open: os.OpenFile}
}

type readResult struct {
	data []byte
	err  error
}

// bounded runs f, waiting at most until the reader's deadline. Its errors do not name the
// file: the caller places them.
func (r *fsReader) bounded(f func() ([]byte, error)) ([]byte, error) {
	left := time.Until(r.deadline)
	if left <= 0 {
		return nil, fmt.Errorf("not read: loading stopped after %v (a hung file system?)", r.timeout)
	}
	done := make(chan readResult, 1) // buffered: a late answer must not block the goroutine
	go func() {
		data, err := f()
		done <- readResult{data, err}
	}()
	timer := time.NewTimer(left)
	defer timer.Stop()
	select {
	case res := <-done:
		return res.data, res.err
	case <-timer.C:
		return nil, fmt.Errorf("no answer from the file system within %v (a hung file system?); skipped", r.timeout)
	}
}

// readDir lists dir within the deadline.
func (r *fsReader) readDir(dir string) ([]os.DirEntry, error) {
	var entries []os.DirEntry
	_, err := r.bounded(func() ([]byte, error) {
		var err error
		entries, err = os.ReadDir(dir)
		return nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("read plans directory %s: %w", dir, err)
	}
	return entries, nil
}

// readFile reads one plan file within the deadline. It opens the file without blocking
// (O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever), then refuses
// anything the open did not find to be a regular file, so a FIFO, socket or device named
// *.yaml is reported, never read.
func (r *fsReader) readFile(path string) ([]byte, error) {
	return r.bounded(func() ([]byte, error) {
		f, err := r.open(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%w (%s); skipped", errNotRegular, fileType(st.Mode()))
		}
		data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if len(data) > maxFileSize {
			return nil, fmt.Errorf("larger than %d bytes; plan files are small", maxFileSize)
		}
		return data, nil
	})
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}
