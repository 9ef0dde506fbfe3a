package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// helperReap is a subreaper (with the orphan reaper when reap is set) whose step detaches a
// child with setsid that exits shortly after; it then prints its zombie children.
func helperReap(reap bool) {
	if err := BecomeSubreaper(); err != nil {
		fmt.Println("subreaper:", err)
		os.Exit(1)
	}
	if reap {
		go ReapOrphans(context.Background(), nil)
	}
	// The detached child closes the pipe, so Run does not wait for it; it outlives the step
	// and its group, is reparented here when its parent exits, and exits 0.3 s later. The
	// step waits until the child left the group: else the group kill could still reach it.
	st, err := (&Runner{}).Run(context.Background(), Cmd{Argv: []string{"sh", "-c", detach}})
	if err != nil || st.Code != 0 {
		fmt.Println("step:", st, err)
		os.Exit(1)
	}
	time.Sleep(time.Second)
	fmt.Println("zombies:", zombieChildren())
	os.Exit(0)
}

// detach is a step that leaves a child in a session of its own, running on after the step.
const detach = `d=$(mktemp -d); setsid sh -c "echo \$\$ > $d/pid; exec sleep 0.3" >/dev/null 2>&1 </dev/null &
while [ ! -s $d/pid ]; do sleep 0.01; done; rm -r $d`

func zombieChildren() []int {
	var z []int
	for _, pid := range children() {
		if st, err := ReadStat(pid); err == nil && st.State == "Z" {
			z = append(z, pid)
		}
	}
	return z
}

// A process that left its step's group (setsid) and exited later is reaped: no zombie
// remains under a subreaper running ReapOrphans. Without the reaper one does, which is what
// the test would catch.
func TestReapOrphansDetached(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want string
	}{
		{"reap", "zombies: []"},
		{"noreap", "zombies: ["}, // the control: one zombie left
	} {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode)
			out, err := cmd.CombinedOutput()
			got := strings.TrimSpace(string(out))
			if err != nil || !strings.HasPrefix(got, tt.want) || (tt.mode == "noreap" && got == "zombies: []") {
				t.Errorf("helper (%s): %q, %v; want %q", tt.mode, got, err, tt.want)
			}
		})
	}
}

// helperBehindOwned is a subreaper without the orphan reaper. It leaves an exited child of
// its own (a Cmd's, entered in the table and not waited for yet) ahead of an orphan that
// exited, reaps once (reapUnowned) and prints the zombies left and how the Cmd's child
// ended, as its Cmd sees it.
func helperBehindOwned() {
	if err := BecomeSubreaper(); err != nil {
		fmt.Println("subreaper:", err)
		os.Exit(1)
	}
	own := exec.Command("sh", "-c", "exit 3")
	if err := startOwned(own); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	if !waitGone(own.Process.Pid, 5*time.Second) {
		fmt.Println("the Cmd's child did not exit")
		os.Exit(1)
	}
	st, err := (&Runner{}).Run(context.Background(), Cmd{Argv: []string{"sh", "-c", detach}})
	if err != nil || st.Code != 0 {
		fmt.Println("step:", st, err)
		os.Exit(1)
	}
	// The orphan exits 0.3 s after the step; a loaded machine may take longer.
	for end := time.Now().Add(10 * time.Second); len(zombieChildren()) < 2 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	before := len(zombieChildren())
	reapUnowned(nil)
	left := zombieChildren()
	werr := own.Wait()
	fmt.Printf("zombies %d, left %v (own %d), own: %v\n", before, left, own.Process.Pid, werr)
	os.Exit(0)
}

// The reaper leaves a Cmd's exited child to its Cmd (which gets its exit status), and still
// reaps an orphan that exited behind it: the kernel, asked which child exited, names one
// (here the older), so the reaper must then look at every child.
func TestReapUnownedBehindOwned(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=behind-owned")
	out, err := cmd.CombinedOutput()
	got := strings.TrimSpace(string(out))
	var before, own int
	var left, status string
	if _, serr := fmt.Sscanf(got, "zombies %d, left %s (own %d), own: %s", &before, &left, &own, &status); serr != nil || err != nil {
		t.Fatalf("helper: %q, %v", got, err)
	}
	if before != 2 || left != fmt.Sprintf("[%d]", own) || !strings.Contains(got, "own: exit status 3") {
		t.Errorf("helper: %q; want 2 zombies before, only the Cmd's (%d) left after, and its Cmd to see exit status 3", got, own)
	}
}
