package registry_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/registry"
)

// A registry answering 503 with "Retry-After: 3600" (an hour; also as an HTTP date a day
// away) is asked again after the client's own longest wait, and the request ends after its
// tries with the registry's answer, not hours later.
func TestRetryAfterIsCapped(t *testing.T) {
	for _, retryAfter := range []string{"3600", time.Now().Add(24 * time.Hour).UTC().Format(http.TimeFormat)} {
		t.Run(retryAfter, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Header().Set("Retry-After", retryAfter)
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			c := registry.New(registry.Options{DockerConfig: t.TempDir(), PlainHTTP: []string{host},
				Attempts: 3, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 100 * time.Millisecond})
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, _, err := c.Digest(t.Context(), host+"/demo/ci:cache")
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "503") {
					t.Errorf("Digest: %v, want the registry's 503", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Digest still waits after 10s (%d requests): Retry-After not capped", requests.Load())
			}
			if n := requests.Load(); n != 3 {
				t.Errorf("%d requests, want 3 (the attempts)", n)
			}
			t.Logf("3 tries in %s", time.Since(start).Round(time.Millisecond))
		})
	}
}
