package httpserve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openFDs counts this process's descriptors: the server runs in the test process.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIdleFlood opens far more idle connections than the cap, some silent and some idle
// after a request (keep-alive), and checks that the server never holds more than the cap,
// closes them by itself, and then answers a new client.
func TestIdleFlood(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	lim := Limits{MaxConns: 8, ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096, ShutdownGrace: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }), lim, "test socket")
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	base := openFDs(t)
	const flood = 200
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%2 == 0 { // a keep-alive client that made one request and went quiet
			fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	// The client side of each connection is ours too: subtract them. The server may hold
	// at most MaxConns accepted connections at any moment.
	peak := 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, openFDs(t)-base-flood)
		time.Sleep(20 * time.Millisecond)
	}
	if peak > lim.MaxConns+2 {
		t.Errorf("server held %d descriptors for %d idle connections, cap %d", peak, flood, lim.MaxConns)
	}
	// Every accepted idle connection is closed by the server within its timeouts: reading
	// from the first one ends (EOF) instead of blocking.
	conns[1].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(conns[1]); err != nil {
		t.Errorf("silent connection not closed by the server: %v", err)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := client.Get("http://x/")
	if err != nil {
		t.Fatalf("a new client after the flood: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}
}
