package registry_test

import (
	"context"
	"log/slog"
	"net/http/httptrace"
	"testing"

	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/internal/teststack"
)

// TestWithLogSharesConnections checks against a real registry that clients derived with
// WithLog reuse the base client's idle connection: a daemon
// derives one per step, and a new pool per step would leave its connections lingering.
func TestWithLogSharesConnections(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	base := registry.New(registry.Options{DockerConfig: teststack.DockerConfig(t), PlainHTTP: []string{"127.0.0.1"}})
	ref := reg.Host + "/demo/main/ci/python3.12:cache-linux-amd64"

	// digest checks ref through c and reports whether the request reused a pooled connection.
	digest := func(c *registry.Client) bool {
		t.Helper()
		var reused, got bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused, got = i.Reused, true },
		})
		if _, found, err := c.Digest(ctx, ref); err != nil || found {
			t.Fatalf("Digest(%s) = found %v, %v; want not found", ref, found, err)
		}
		if !got {
			t.Fatal("no connection traced")
		}
		return reused
	}
	discard := slog.New(slog.DiscardHandler)
	digest(base.WithLog(discard))
	second := base.WithLog(discard)
	if !digest(second) {
		t.Error("a client derived with WithLog opened a new connection instead of reusing the pool")
	}
	if second.HTTPClient() != base.HTTPClient() {
		t.Error("WithLog built a new HTTP client")
	}
}
