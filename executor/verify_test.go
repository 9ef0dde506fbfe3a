package executor

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

// TestVerifyErrorNamesEachThingOnce: with the registry unreachable, the verify error names
// the ref once (verify's own words), the request URL once (the transport's) and the tries
// once (the retry client's), with the cause at the end: no layer repeats another.
func TestVerifyErrorNamesEachThingOnce(t *testing.T) {
	host := testkit.FreeAddr(t) // a real port nobody listens on

	tools := &Tools{DockerConfig: t.TempDir(), PlainHTTPRegistries: []string{host},
		RegistryAttempts: 2, RegistryRetryWaitMin: time.Millisecond, RegistryRetryWaitMax: 10 * time.Millisecond}
	ref := host + "/demo/main/ci/python3.11:cache-linux-amd64"
	url := "http://" + host + "/v2/demo/main/ci/python3.11/manifests/cache-linux-amd64"
	a := &Attempt{Log: slog.New(slog.DiscardHandler), Record: func(func(*history.Step)) {}}
	err := verifyCache{&plan.VerifyAction{Refs: []string{ref}}}.run(t.Context(), tools, a)
	if err == nil {
		t.Fatalf("verify against %s (nobody listening) succeeded", host)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, tc := range []struct {
		what, s string
		n       int
	}{
		{"the ref, as verify names it", "verify cache " + ref + ": ", 1},
		{"the request URL", url, 1},
		{"the number of tries", "(2 tries)", 1},
		{"the cause", "connection refused", 1},
		{"the host", host, 3}, // in the ref, the URL and the dial error, nowhere else
	} {
		if got := strings.Count(msg, tc.s); got != tc.n {
			t.Errorf("%s (%q) appears %d times, want %d, in %q", tc.what, tc.s, got, tc.n, msg)
		}
	}
	if !strings.HasPrefix(msg, "verify cache "+ref+": ") {
		t.Errorf("error %q does not start with what verify was doing", msg)
	}
}
