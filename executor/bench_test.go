package executor

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// BenchmarkSequentialSteps runs a chain of 100 /bin/true steps, each needing the one before
// it, as bench/overhead.sh does through the binary: the engine's cost per step (its record,
// journal and saves, log file, process group, reaping) on top of starting the process. One
// op = the whole run; ms/step is the run's time divided by its steps. For a CPU profile:
// go test ./executor -run '^$' -bench SequentialSteps -cpuprofile cpu.prof.
func BenchmarkSequentialSteps(b *testing.B) {
	const steps = 100
	e := newEngineT(b, time.Second)
	e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	e.cfg.Output = nil
	insts := make([]*plan.Instance, steps)
	for i := range insts {
		insts[i] = step(fmt.Sprintf("s%d", i+1), "/bin/true")
		if i > 0 {
			insts[i].Needs = []string{insts[i-1].ID}
		}
	}
	g := graph(&plan.Plan{Name: "bench", KeepRuns: 1}, insts...)
	start := time.Now()
	runs := 0
	for b.Loop() {
		r, err := e.Run(b.Context(), g, RunSpec{Trigger: history.TriggerManual})
		if err != nil || r.Status != history.StatusSucceeded {
			b.Fatalf("run: %v, %v", r.Status, err)
		}
		runs++
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(runs*steps), "ms/step")
}
