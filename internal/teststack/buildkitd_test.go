package teststack

import (
	"os"
	"testing"
)

// TestBuildkitdOwnPaths starts two buildkitd nodes at once and checks that each serves its
// OTEL socket at its own path: with buildkitd's default (/run/buildkit/otel-grpc.sock) the
// second would remove and chown the first's socket, which failed concurrent test stacks.
func TestBuildkitdOwnPaths(t *testing.T) {
	Require(t)
	a := StartBuildkitd(t, "a")
	b := StartBuildkitd(t, "b")
	if a.OtelSocket == b.OtelSocket {
		t.Fatalf("both nodes use the OTEL socket %s", a.OtelSocket)
	}
	for _, n := range []*Buildkitd{a, b} {
		fi, err := os.Stat(n.OtelSocket)
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		if fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("node %s: %s is %s, not a socket", n.Name, n.OtelSocket, fi.Mode())
		}
	}
}
