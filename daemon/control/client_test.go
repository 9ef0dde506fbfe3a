package control

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClientTimesOutOnSilentDaemon points the client at a real Unix socket whose server
// accepts connections and never answers, as a wedged daemon would.
func TestClientTimesOutOnSilentDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "wedged.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or answered
			mu.Unlock()
		}
	}()
	c := NewClient(sock, WithTimeout(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"status", func() error { _, err := c.Status(ctx); return err }},
		{"reload", func() error { _, err := c.Reload(ctx); return err }},
		{"cancel", func() error { return c.Cancel(ctx, "r1") }},
		{"logs -f waiting for the answer", func() error { return c.Logs(ctx, "r1", "", true, func(string) error { return nil }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), "no answer from the daemon on "+sock+" within 200ms") {
				t.Fatalf("err = %v, want the timeout naming the socket", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("returned after %s", took)
			}
		})
	}
}

// TestFollowOutlivesTimeout checks that a followed log stream that stays quiet for longer
// than the timeout is not cut: the timeout is for the daemon's answer, not the stream.
func TestFollowOutlivesTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "slow.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 100 * time.Millisecond
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(5 * timeout) // a step printing nothing for a while
		w.Write([]byte("late line\n"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	err = NewClient(sock, WithTimeout(timeout)).Logs(ctx, "r1", "", true, func(l string) error { got = append(got, l); return nil })
	if err != nil || len(got) != 1 || got[0] != "late line" {
		t.Fatalf("follow: lines %q, err %v; want the late line", got, err)
	}
}
