package testkit

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Notify is a NOTIFY_SOCKET as systemd offers one to a service: it receives the datagrams
// of sd_notify until the test ends.
type Notify struct {
	// Path is the socket's address, the value for NOTIFY_SOCKET.
	Path string

	mu    sync.Mutex
	msgs  []string
	syncs map[string]chan struct{} // Sync's markers not read yet
	n     int                      // markers sent
}

// syncMarker starts the datagrams Sync sends; no sd_notify message starts so.
const syncMarker = "TESTKIT_SYNC="

// NotifySocket listens on a new datagram socket in a temporary directory of the test and
// collects every message sent to it; Cleanup closes it and waits for the reader.
func NotifySocket(t testing.TB) *Notify {
	t.Helper()
	n := &Notify{Path: filepath.Join(t.TempDir(), "notify.sock"), syncs: map[string]chan struct{}{}}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.Path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on notify socket: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10) // sd_notify's messages are small; a datagram is whole
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			msg := string(buf[:k])
			n.mu.Lock()
			if c, ok := n.syncs[msg]; ok {
				delete(n.syncs, msg)
				close(c)
			} else {
				n.msgs = append(n.msgs, msg)
			}
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// Sync returns every datagram sent to the socket before it was called, all of them read:
// the reader is a goroutine of its own, so what a sender sent just before it stopped (a
// daemon's STOPPING=1 before it exits) may still wait in the socket's queue when the test
// looks. Sync sends a marker of its own through the socket and waits for the reader to
// reach it; the queue of a datagram socket is in order, so by then every earlier one has
// been read. The marker is not among the messages.
func (n *Notify) Sync(t testing.TB) []string {
	t.Helper()
	n.mu.Lock()
	n.n++
	marker := fmt.Sprintf("%s%d", syncMarker, n.n)
	read := make(chan struct{})
	n.syncs[marker] = read
	n.mu.Unlock()
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("sync with the notify socket: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(marker)); err != nil {
		t.Fatalf("sync with the notify socket: %v", err)
	}
	select {
	case <-read:
	case <-time.After(30 * time.Second):
		t.Fatalf("the notify socket's reader did not reach the sync marker in 30s; read so far: %q", n.Messages())
	}
	return n.Messages()
}

// Messages returns every datagram received so far, in order.
func (n *Notify) Messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// String is every datagram received so far, one after the other, for Contains checks and
// failure messages.
func (n *Notify) String() string { return strings.Join(n.Messages(), "\n---\n") }
