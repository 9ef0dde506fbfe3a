package registry_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/teststack"
)

// countingForwarder forwards TCP connections to target and counts them: a TLS client that
// retried would open one connection per try.
func countingForwarder(t *testing.T, target string) (host string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
			})
		}
	})
	return ln.Addr().String(), conns
}

// A registry that speaks plain HTTP, reached without --plain-http-registry: one try, and an
// error that names the flag and the host to give it.
func TestPlainHTTPRegistryNamesTheFlag(t *testing.T) {
	testkit.Need(t, "docker-registry")
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	host, conns := countingForwarder(t, reg.Host)
	c := registry.New(registry.Options{
		DockerConfig: t.TempDir(),
		Attempts:     5,
		RetryWaitMin: 50 * time.Millisecond,
		RetryWaitMax: 500 * time.Millisecond,
		Log:          slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	_, _, err := c.Digest(t.Context(), host+"/demo/ci:cache-linux-amd64")
	if err == nil {
		t.Fatal("Digest over https from a plain-HTTP registry succeeded")
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a plain-HTTP answer is not retried", n)
	}
	testkit.Golden(t, "testdata/plain-http.golden", strings.ReplaceAll(err.Error(), host, "HOST:PORT")+"\n")
}
