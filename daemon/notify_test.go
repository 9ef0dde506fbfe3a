package daemon

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// statuses returns the STATUS= values among msgs, in order.
func statuses(msgs []string) []string {
	var out []string
	for _, m := range msgs {
		for line := range strings.Lines(m) {
			if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "STATUS="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// TestStatusFollowsRunsAndStop drives the daemon through a real NOTIFY_SOCKET: STATUS= names
// a run while it runs and not once it has ended; a stop during a run sends STOPPING=1, after
// which no READY=1 and no ordinary status line go out (the run ending in the stop, and a
// reload asked for during it, only count the stop down).
func TestStatusFollowsRunsAndStop(t *testing.T) {
	n := testkit.NotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", n.Path)
	dir := t.TempDir()
	quick := parsePlan(t, dir, "quick", "plan: quick\nsteps:\n  - id: s\n    run: [sleep, \"0.2\"]\n")
	long := parsePlan(t, dir, "long", "plan: long\nkill_grace: 1s\nsteps:\n  - id: s\n    run: [sleep, \"30\"]\n")
	td := startDaemon(t, dir, Config{Load: plansOf(quick, long), Notify: SystemdNotifier{Log: slog.Default()}})
	sock, shutdown, store := td.sock, td.shutdown, td.store
	testkit.WaitFor(t, "READY=1", 5*time.Second, func() bool { return strings.Contains(n.String(), "READY=1") })
	c := control.NewClient(sock)
	bg := context.Background()

	tr, err := c.Trigger(bg, "quick")
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "quick recorded", 10*time.Second, func() bool {
		r, _ := store.Run(tr.Run)
		return r != nil && r.Status == history.StatusSucceeded
	})
	// The end is reported before the engine returns: the last status must already say so.
	testkit.WaitFor(t, "a status after the run", 5*time.Second, func() bool {
		st := statuses(n.Messages())
		return len(st) > 0 && st[len(st)-1] == "2 plans, 0 running"
	})
	if st := statuses(n.Messages()); !slices.Contains(st, "2 plans, 1 running: quick") {
		t.Errorf("statuses %q: none named the running run", st)
	}

	lr, err := c.Trigger(bg, "long")
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "long running", 5*time.Second, func() bool {
		st := statuses(n.Messages())
		return len(st) > 0 && st[len(st)-1] == "2 plans, 1 running: long"
	})
	go td.Reload(bg) // may land before or during the stop: either way no READY=1 after STOPPING=1
	shutdown()
	r, err := store.Run(lr.Run)
	if err != nil || r.Status != history.StatusInterrupted {
		t.Fatalf("long run after the stop: %+v %v, want interrupted", r, err)
	}
	// The receiver reads the datagrams in a goroutine of its own: the last ones the stop sent
	// before it returned may not have been read yet; Sync reads them all.
	msgs := n.Sync(t)
	if st := statuses(msgs); len(st) == 0 || st[len(st)-1] != "stopping: no runs left" {
		t.Errorf("statuses %q, want the stop's last: stopping: no runs left", st)
	}
	stop := -1
	for i, m := range msgs {
		if strings.Contains(m, "STOPPING=1") {
			stop = i
			break
		}
	}
	if stop < 0 {
		t.Fatalf("no STOPPING=1 in %q", msgs)
	}
	if !strings.Contains(msgs[stop], "STATUS=stopping: interrupting 1 running run: long") {
		t.Errorf("STOPPING message %q, want the run it interrupts", msgs[stop])
	}
	for _, m := range msgs[stop+1:] {
		if strings.Contains(m, "READY=1") || strings.Contains(m, "RELOADING=1") || strings.Contains(m, "plans,") {
			t.Errorf("after STOPPING=1: %q", m)
		}
	}
}
