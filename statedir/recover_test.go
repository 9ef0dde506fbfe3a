package statedir

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/proc"
)

// TestRecoverInterruptedPidReuse runs a real process group (a leader that waits and a
// background sleep) and records it in a run left running, with the record altered the way
// pid reuse or a reboot would alter it: only a record that matches gets the group stopped.
func TestRecoverInterruptedPidReuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		alter    func(*history.Attempt)
		wantDead bool
		onRun    bool // recorded as the run's own group (skip_if's git), not an attempt's
	}{
		{"matching record", func(*history.Attempt) {}, true, false},
		{"matching record of the run's own group", func(*history.Attempt) {}, true, true},
		{"leader start time differs (pid reused)", func(a *history.Attempt) { a.StartTicks++ }, false, false},
		{"recorded on another boot", func(a *history.Attempt) { a.BootID = "another-boot" }, false, false},
		{"no start time recorded", func(a *history.Attempt) { a.StartTicks = 0 }, false, false},
		{"attempt already ended", func(a *history.Attempt) { a.End = time.Now() }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", "sleep 30 & wait")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pgid := cmd.Process.Pid
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL); <-exited })

			g, err := proc.ReadGroup(pgid)
			if err != nil || g.PGID != pgid || g.StartTicks == 0 || g.BootID == "" {
				t.Fatalf("proc.ReadGroup(%d) = %+v, %v", pgid, g, err)
			}
			a := history.Attempt{N: 1, Start: time.Now(), ExitCode: -1, PGID: g.PGID, StartTicks: g.StartTicks, BootID: g.BootID}
			tt.alter(&a)
			store, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			run := &history.Run{ID: "p-1", Plan: "p", Start: time.Now(), Status: history.StatusRunning,
				Steps: []history.Step{{Instance: "work", Status: history.StatusRunning, Attempts: []history.Attempt{a}}}}
			if tt.onRun {
				run.Steps[0].Attempts = nil
				run.Process = &history.ProcessGroup{PGID: a.PGID, StartTicks: a.StartTicks, BootID: a.BootID}
			}
			if err := store.SaveRun(run); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			ids, err := Dir{Root: t.TempDir()}.Recover(context.Background(), store, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil || len(ids) != 1 || ids[0] != "p-1" {
				t.Fatalf("RecoverInterrupted = %v, %v", ids, err)
			}
			if dead := proc.LiveMembers(pgid) == 0; dead != tt.wantDead {
				t.Errorf("group %d dead = %v, want %v", pgid, dead, tt.wantDead)
			}
			// The stop is logged with the keys every other log line of a run has.
			want := "plan=p run=p-1 step=work attempt=1"
			if tt.onRun {
				want = "plan=p run=p-1 pgid="
			}
			if tt.wantDead && !strings.Contains(logs.String(), want) {
				t.Errorf("logs lack %q:\n%s", want, logs.String())
			}
			r, err := store.Run("p-1")
			if err != nil || r.Status != history.StatusInterrupted || r.Reason != InterruptedReason {
				t.Errorf("run after recovery: %+v, %v", r, err)
			}
		})
	}
}

// TestRecoverReplaysTheJournal: step changes that reached the run's journal but not the
// store (refreshd was killed before its background save) are in the record after recovery:
// a step that had succeeded stays succeeded, and the group of one still running is stopped.
func TestRecoverReplaysTheJournal(t *testing.T) {
	dir := Dir{Root: t.TempDir()}
	store, err := history.Open(dir.History())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer cmd.Process.Kill()
	g, err := proc.ReadGroup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	r := &history.Run{ID: "r1", Plan: "p", Status: history.StatusRunning, Start: start,
		Steps: []history.Step{{Instance: "a", Status: history.StatusWaiting}, {Instance: "b", Status: history.StatusWaiting}}}
	if err := store.SaveRun(r); err != nil {
		t.Fatal(err)
	}
	j, err := dir.OpenJournal("r1")
	if err != nil {
		t.Fatal(err)
	}
	j.Step(0, &history.Step{Instance: "a", Status: history.StatusRunning, Start: start})
	j.Step(0, &history.Step{Instance: "a", Status: history.StatusSucceeded, Start: start, End: start})
	j.Step(1, &history.Step{Instance: "b", Status: history.StatusRunning, Start: start,
		Attempts: []history.Attempt{{N: 1, Start: start, ExitCode: -1, PGID: g.PGID, StartTicks: g.StartTicks, BootID: g.BootID}}})
	j.f.WriteString(`1 {"instance":"b","status":"succ`) // torn by the kill
	j.Close()

	if _, err := dir.Recover(context.Background(), store, Options{}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Run("r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Steps[0].Status != history.StatusSucceeded || got.Steps[1].Status != history.StatusInterrupted {
		t.Errorf("after recovery: a %s, b %s; want succeeded, interrupted", got.Steps[0].Status, got.Steps[1].Status)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the group only the journal knew was not stopped")
	}
}
