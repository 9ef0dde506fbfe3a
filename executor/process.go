package executor

import (
	"log/slog"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/proc"
)

// ExitStatus is how a process ended.
type ExitStatus = proc.Status

// attemptProcs is the runner of every process attempt i of the run starts (a run step's
// argv, git for publishing, docker buildx and buildctl): the step's kill grace, and each new
// process group recorded on the attempt and saved before the process runs on, so a kill -9
// of refreshd from then on leaves a record the next start stops the group from
// (statedir.Dir.Recover). An attempt runs its processes one after another, so the attempt's
// record holds the one that may be running.
func (rs *runState) attemptProcs(i int, log *slog.Logger) *proc.Runner {
	return &proc.Runner{Grace: rs.grace, Log: log, Started: func(g proc.Group) {
		// The change is in the run's journal when update returns: the recovery after a
		// kill -9 finds the group before the process runs on.
		rs.rec.update(i, func(s *history.Step) {
			a := &s.Attempts[len(s.Attempts)-1]
			a.PGID, a.StartTicks, a.BootID = g.PGID, g.StartTicks, g.BootID
		})
	}}
}

// procs is the runner of the processes the run starts outside any step (skip_if's git):
// each group is recorded on the run itself, for the same recovery.
func (d *skipDecider) procs() *proc.Runner {
	return &proc.Runner{Grace: d.env.grace, Log: d.env.log, Started: func(g proc.Group) {
		// the run's own group is not a step's: saved before git runs on
		d.rec.setProcess(history.ProcessGroup{PGID: g.PGID, StartTicks: g.StartTicks, BootID: g.BootID})
	}}
}
