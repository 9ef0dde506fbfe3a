package testkit

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Notify is a NOTIFY_SOCKET as systemd offers one to a service: it receives the datagrams
// of sd_notify until the test ends.
type Notify struct {
	// Path is the socket's address, the value for NOTIFY_SOCKET.
	Path string

	mu   sync.Mutex
	msgs []string
}

// NotifySocket listens on a new datagram socket in a temporary directory of the test and
// collects every message sent to it; Cleanup closes it and waits for the reader.
func NotifySocket(t testing.TB) *Notify {
	t.Helper()
	n := &Notify{Path: filepath.Join(t.TempDir(), "notify.sock")}
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
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
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
