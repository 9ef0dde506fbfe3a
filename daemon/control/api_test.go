package control

import (
	"testing"

	"github.com/refreshd/refreshd/history"
)

// TestExitCode pins the exit codes `run --local` and `run --wait` share.
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		status history.Status
		want   int
	}{
		{history.StatusSucceeded, 0},
		{history.StatusSkipped, 0},
		{history.StatusInterrupted, 130},
		{history.StatusFailed, 1},
		{history.StatusRunning, 1},
	} {
		if got := ExitCode(tc.status); got != tc.want {
			t.Errorf("ExitCode(%s) = %d, want %d", tc.status, got, tc.want)
		}
	}
}
