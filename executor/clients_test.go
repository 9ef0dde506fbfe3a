package executor

import (
	"log/slog"
	"sync"
	"testing"
)

// TestRegistryClientBuiltOnce checks that concurrent steps get registry clients sharing one
// HTTP client (one connection pool per Tools), not a new pool each.
func TestRegistryClientBuiltOnce(t *testing.T) {
	tools := &Tools{PlainHTTPRegistries: []string{"127.0.0.1"}}
	const n = 8
	var wg sync.WaitGroup
	got := make([]any, n)
	for i := range n {
		wg.Go(func() { got[i] = tools.registryClient(slog.New(slog.DiscardHandler)).HTTPClient() })
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("step %d got HTTP client %p, step 0 %p: a pool per step", i, got[i], got[0])
		}
	}
}
