package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
)

// A failed step's reason, and so the run's, names the first output line that says what went
// wrong, not only the exit code; output without such a line leaves the reason as it was.
func TestFailureReasonNamesErrorLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 500)
	tests := []struct {
		name, script, want, notWant string
	}{
		{"registry 401", `echo "#12 exporting cache"; echo "ERROR: failed to push 127.0.0.1:5000/ci:cache-linux-amd64: unexpected status from HEAD request: 401 Unauthorized"; echo "later: error: second"; exit 1`,
			"exit code 1: ERROR: failed to push 127.0.0.1:5000/ci:cache-linux-amd64: unexpected status from HEAD request: 401 Unauthorized", "second"},
		{"git fatal", `echo "To origin"; echo "fatal: Authentication failed for 'https://example.com/c.git/'" >&2; exit 128`,
			"exit code 128: fatal: Authentication failed for 'https://example.com/c.git/'", ""},
		{"no error line", `echo "all good"; exit 3`, "attempt 1 of 1: exit code 3", "all good"},
		{"long line cut", `echo "error: ` + long + `"; exit 1`, "exit code 1: error: " + long[:293] + "...", long[:294]},
	}
	e := newEngineT(t, time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(t, context.Background(), graph(nil, step("s", "sh", "-c", tt.script)))
			s := stepOf(t, r, "s")
			if s.Status != history.StatusFailed || !strings.Contains(s.Reason, tt.want) {
				t.Errorf("step reason %q, want it to contain %q", s.Reason, tt.want)
			}
			if tt.notWant != "" && strings.Contains(s.Reason, tt.notWant) {
				t.Errorf("step reason %q names %q", s.Reason, tt.notWant)
			}
			if !strings.Contains(r.Reason, tt.want) {
				t.Errorf("run reason %q, want it to contain %q", r.Reason, tt.want)
			}
		})
	}
}
