package executor

import (
	"testing"
	"time"

	"github.com/refreshd/refreshd/plan"
)

// The kill grace precedence: a test/CLI override, then the plan's kill_grace, then the
// daemon's --kill-grace, then 30s; the daemon's stop-timeout cap bounds them all, so a stop
// always finishes before systemd's TimeoutStopSec.
func TestKillGracePrecedence(t *testing.T) {
	t.Parallel()
	const s = time.Second
	for _, tc := range []struct {
		name                          string
		override, def, max, planGrace time.Duration
		want                          time.Duration
	}{
		{"nothing set", 0, 0, 0, 0, 30 * s},
		{"daemon default for a plan without one", 0, 10 * s, 0, 0, 10 * s},
		{"the plan wins over the daemon default", 0, 10 * s, 0, 45 * s, 45 * s},
		{"an override wins over the plan", 2 * s, 10 * s, 0, 45 * s, 2 * s},
		{"the cap bounds the plan", 0, 0, 60 * s, 5 * time.Minute, 60 * s},
		{"the cap bounds the default", 0, 0, 20 * s, 0, 20 * s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{cfg: Config{KillGrace: tc.override, DefaultKillGrace: tc.def, MaxKillGrace: tc.max}}
			if got := e.grace(&plan.Plan{KillGrace: tc.planGrace}); got != tc.want {
				t.Errorf("grace = %s, want %s", got, tc.want)
			}
		})
	}
}
