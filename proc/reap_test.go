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
