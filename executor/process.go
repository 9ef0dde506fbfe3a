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
// (statedir.Dir.Recover). The attempt's record holds one group, the latest: an attempt
// runs its processes one after another, except provisioning, which waits for every node
// of a builder at once (buildx.Client.WaitRunningAll), so a kill -9 then leaves all but
// one of those groups unrecorded (each leader still dies by Pdeathsig).
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
