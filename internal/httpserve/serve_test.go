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

// TestFloodDoesNotDelayGoodRequests: with every connection slot held by clients that send
// nothing (silent since connect, as 300 of them delayed /metrics to 8 s) or went idle after
// a request (as 1,000 of them made `refreshd status` time out on the socket), a new client
// is answered within a second, over TCP and over a Unix socket; a request in flight is
// never the one closed to make room, and the server never holds more than its cap.
func TestFloodDoesNotDelayGoodRequests(t *testing.T) {
	for _, tt := range []struct {
		name    string
		network string
		flood   int
		request bool // the flood's connections each made one request and went idle
	}{
		{"300 silent TCP connections", "tcp", 300, false},
		{"1000 idle Unix connections", "unix", 1000, true},
		{"300 idle TCP connections", "tcp", 300, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if tt.network == "unix" {
				addr = filepath.Join(t.TempDir(), "s.sock")
			}
			l, err := net.Listen(tt.network, addr)
			if err != nil {
				t.Fatal(err)
			}
			addr = l.Addr().String()
			// Timeouts far longer than the test: only making room can let the good client in.
			lim := Limits{MaxConns: 64, PerClient: 32, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 4096, ShutdownGrace: time.Second}
			release, inFlight := make(chan struct{}), make(chan struct{})
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
			mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { close(inFlight); <-release; fmt.Fprint(w, "slow ok") })
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Serve(ctx, l, mux, lim, "test listener") }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			}()
			dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, tt.network, addr)
			}
			client := func() *http.Client {
				return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial}}
			}
			// A request in flight before the flood: it must survive it.
			slow := make(chan string, 1)
			go func() {
				resp, err := client().Get("http://x/slow")
				if err != nil {
					slow <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				slow <- string(b)
			}()
			<-inFlight // its request was read: it is in flight, not a silent connection

			base := openFDs(t)
			var flood []net.Conn
			defer func() {
				for _, c := range flood {
					c.Close()
				}
			}()
			for i := range tt.flood {
				c, err := net.Dial(tt.network, addr)
				if err != nil {
					t.Fatalf("flood connection %d: %v", i, err)
				}
				flood = append(flood, c)
				if tt.request {
					fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				}
			}
			time.Sleep(200 * time.Millisecond) // let the server accept what it will
			if held := openFDs(t) - base - tt.flood; held > lim.MaxConns+2 {
				t.Errorf("server holds %d descriptors for %d flood connections, cap %d", held, tt.flood, lim.MaxConns)
			}
			for i := range 3 {
				start := time.Now()
				resp, err := client().Get("http://x/")
				if err != nil {
					t.Fatalf("good request %d under the flood: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if took := time.Since(start); string(b) != "ok" || took > time.Second {
					t.Errorf("good request %d under the flood: %q in %s, want ok within 1s", i, b, took)
				}
			}
			close(release)
			if got := <-slow; got != "slow ok" {
				t.Errorf("the request in flight during the flood: %q, want slow ok", got)
			}
		})
	}
}
