package proc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects a helper mode when the test binary runs itself as a child: the tests
// that kill or reap need a process of their own as the parent.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "pdeathsig":
		helperPdeathsig()
	case "reap", "noreap":
		helperReap(os.Getenv(helperEnv) == "reap")
	case "behind-owned":
		helperBehindOwned()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

func run(t *testing.T, r *Runner, c Cmd) (Status, string) {
	t.Helper()
	var out bytes.Buffer
	if c.Output == nil {
		c.Output = &out
	}
	st, err := r.Run(t.Context(), c)
	if err != nil {
		t.Fatalf("Run(%q): %v", c.Argv, err)
	}
	return st, out.String()
}

func TestRunStatus(t *testing.T) {
	for _, tt := range []struct {
		name string
		argv []string
		want Status
	}{
		{"success", []string{"true"}, Status{Code: 0}},
		{"exit code", []string{"sh", "-c", "exit 3"}, Status{Code: 3}},
		{"killed", []string{"sh", "-c", "kill -KILL $$"}, Status{Code: -1, Signal: "killed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if st, _ := run(t, nil, Cmd{Argv: tt.argv}); st != tt.want {
				t.Errorf("status %+v, want %+v", st, tt.want)
			}
		})
	}
}

func TestRunStartErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Cmd
		want string
	}{
		{"empty argv", Cmd{}, "empty command"},
		{"not in PATH", Cmd{Argv: []string{"no-such-program-x"}, Env: []string{"PATH=/nonexistent"}}, "no-such-program-x: executable not found in PATH (/nonexistent)"},
		{"missing dir", Cmd{Argv: []string{"/bin/true"}, Dir: "/nonexistent-dir"}, "working directory of /bin/true: stat /nonexistent-dir: no such file or directory"},
		{"dir is a file", Cmd{Argv: []string{"/bin/true"}, Dir: "/bin/true"}, "working directory of /bin/true: /bin/true is not a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := (&Runner{}).Run(t.Context(), tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || st.Code != -1 {
				t.Errorf("Run = %+v, %v; want code -1 and an error containing %q", st, err, tt.want)
			}
		})
	}
}

// Standard output and error share one pipe, in the order written, unless Stdout is set.
func TestRunOutput(t *testing.T) {
	script := "echo one; echo two >&2; echo three"
	if _, out := run(t, nil, Cmd{Argv: []string{"sh", "-c", script}}); out != "one\ntwo\nthree\n" {
		t.Errorf("combined output %q", out)
	}
	var stdout bytes.Buffer
	if _, out := run(t, nil, Cmd{Argv: []string{"sh", "-c", script}, Stdout: &stdout}); out != "two\n" || stdout.String() != "one\nthree\n" {
		t.Errorf("output %q, stdout %q", out, stdout.String())
	}
}

// The environment is the one given, and the command is looked up in its PATH.
func TestRunEnvAndPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/hello", []byte("#!/bin/sh\necho hello $GREETING\n"), 0o755)
	_, out := run(t, nil, Cmd{Argv: []string{"hello"}, Env: []string{"PATH=" + dir + ":/usr/bin:/bin", "GREETING=world"}})
	if out != "hello world\n" {
		t.Errorf("output %q", out)
	}
}

// The group's identity reaches Started before the process ends, as /proc has it.
func TestRunStartedGetsGroup(t *testing.T) {
	var got Group
	var pidOut bytes.Buffer
	r := &Runner{Started: func(g Group) {
		got = g
		st, err := ReadStat(g.PGID)
		if err != nil || st.PGID != g.PGID || st.StartTicks != g.StartTicks {
			t.Errorf("at Started: /proc/%d/stat = %+v, %v; group %+v", g.PGID, st, err, g)
		}
	}}
	run(t, r, Cmd{Argv: []string{"sh", "-c", "echo $$; sleep 0.1"}, Output: &pidOut})
	pid, _ := strconv.Atoi(strings.TrimSpace(pidOut.String()))
	if got.PGID != pid || got.StartTicks == 0 || got.BootID != BootID() || got.BootID == "" {
		t.Errorf("Started got %+v; leader pid %d, boot %s", got, pid, BootID())
	}
}

// A background child the leader does not wait for is stopped and reaped when the leader
// exits: nothing of the group outlives Run.
func TestRunStopsWhatTheLeaderLeft(t *testing.T) {
	st, out := run(t, &Runner{Grace: time.Second}, Cmd{Argv: []string{"sh", "-c", "sleep 30 >/dev/null & echo $!"}})
	child, _ := strconv.Atoi(strings.TrimSpace(out))
	if st.Code != 0 || child == 0 {
		t.Fatalf("status %+v output %q", st, out)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(child)); err == nil {
		s, _ := ReadStat(child)
		t.Errorf("background child %d still exists after Run (state %s)", child, s.State)
	}
}

// Cancelling: SIGTERM to the group, then SIGKILL after the grace for a process that
// ignores SIGTERM.
func TestRunCancel(t *testing.T) {
	for _, tt := range []struct {
		name       string
		script     string
		wantSignal string
		minTime    time.Duration
	}{
		{"stops on SIGTERM", "sleep 30 & wait", "terminated", 0},
		{"ignores SIGTERM", "trap '' TERM; sleep 30 & wait; wait", "killed", 500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			var out bytes.Buffer
			r := &Runner{Grace: 500 * time.Millisecond, Started: func(Group) { time.AfterFunc(200*time.Millisecond, cancel) }}
			start := time.Now()
			st, err := r.Run(ctx, Cmd{Argv: []string{"sh", "-c", tt.script}, Output: &out})
			took := time.Since(start) - 200*time.Millisecond
			if err != nil || st.Signal != tt.wantSignal {
				t.Errorf("Run = %+v, %v; want killed by %s", st, err, tt.wantSignal)
			}
			if took < tt.minTime || took > 5*time.Second {
				t.Errorf("stopped %s after the cancel, want at least %s (the grace) and not the sleep", took, tt.minTime)
			}
		})
	}
}

// slowWriter takes its time over every write, like a log follower that lags.
type slowWriter struct {
	mu    sync.Mutex
	delay time.Duration
	b     bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Output still in the pipe when the group ends is read to the end however slow the writer:
// only time spent waiting for data counts towards giving up on the pipe.
func TestRunSlowWriterLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("takes several seconds")
	}
	const n = 20000 // about 400 KB: several pipe buffers
	w := &slowWriter{delay: 300 * time.Millisecond}
	lines := 0
	lw := &Lines{Line: func([]byte) { lines++ }}
	st, err := (&Runner{}).Run(t.Context(), Cmd{
		Argv:   []string{"sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line-$i-xxxxxxxxx; i=$((i+1)); done", n)},
		Output: multi{w, lw},
	})
	lw.Flush()
	if err != nil || st.Code != 0 {
		t.Fatalf("Run = %+v, %v", st, err)
	}
	if lines != n || !strings.HasSuffix(w.b.String(), fmt.Sprintf("line-%d-xxxxxxxxx\n", n-1)) {
		t.Errorf("got %d lines, want %d", lines, n)
	}
}

type multi []interface{ Write([]byte) (int, error) }

func (m multi) Write(p []byte) (int, error) {
	for _, w := range m {
		w.Write(p)
	}
	return len(p), nil
}

// A process that left the group (setsid) and holds the pipe does not hold Run: reading stops
// once nothing has arrived for pipeDrainWait after the group ended.
func TestRunEscapedPipeHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the drain timeout")
	}
	start := time.Now()
	// The step waits until the child left the group (else the group kill could reach it).
	script := `d=$(mktemp -d); setsid sh -c "echo \$\$ > $d/pid; exec sleep 30" &
while [ ! -s $d/pid ]; do sleep 0.01; done; cat $d/pid; rm -r $d`
	st, out := run(t, nil, Cmd{Argv: []string{"sh", "-c", script}})
	took := time.Since(start)
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	if pid > 0 {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	if st.Code != 0 || pid == 0 {
		t.Fatalf("status %+v output %q", st, out)
	}
	if took < pipeDrainWait || took > pipeDrainWait+3*time.Second {
		t.Errorf("Run took %s, want about %s (the drain wait)", took, pipeDrainWait)
	}
}

// helperPdeathsig starts `sleep 30` through Run, prints its pid and blocks until killed.
func helperPdeathsig() {
	r := &Runner{Started: func(g Group) { fmt.Println(g.PGID) }}
	r.Run(context.Background(), Cmd{Argv: []string{"sleep", "30"}})
	os.Exit(1)
}

// The leader dies with its parent: kill -9 of the process that called Run kills it.
func TestPdeathsig(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=pdeathsig")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var line [32]byte
	n, _ := stdout.Read(line[:])
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper printed %q", line[:n])
	}
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
	cmd.Process.Kill()
	cmd.Wait()
	if !waitGone(pid, 5*time.Second) {
		t.Errorf("sleep %d survives kill -9 of the process that started it", pid)
	}
}

// waitGone waits until pid is gone or a zombie.
func waitGone(pid int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if st, err := ReadStat(pid); err != nil || st.State == "Z" {
			return true
		}
	}
	return false
}
