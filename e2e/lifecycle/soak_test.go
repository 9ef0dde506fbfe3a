package lifecycle

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// The soak and fault suite: the daemon binary under floods it must survive with nothing
// lost, nothing leaked and its resources bounded. Every loop is bounded in count and time.

// trigger starts plan through the daemon and waits for the run to end.
func (e *env) triggerWait(plan string, within time.Duration) *history.Run {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := e.client().Trigger(ctx, plan)
	if err != nil {
		e.t.Fatalf("trigger %s: %v", plan, err)
	}
	return e.waitRun(plan, tr.Run, within)
}

// attemptLog is the log file of the run's only attempt of instance.
func attemptLog(t *testing.T, r *history.Run, instance string) string {
	t.Helper()
	for _, s := range r.Steps {
		if s.Instance == instance && len(s.Attempts) > 0 {
			return s.Attempts[len(s.Attempts)-1].Log
		}
	}
	t.Fatalf("run %s has no attempt of %s", r.ID, instance)
	return ""
}

// status reads a field of /proc/PID/status in kB.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestFollowersFlood has 50 followers, most of them slow, read a step that prints 50,000
// lines as fast as it can: the attempt log holds every line, the run succeeded, and every
// follower either got every line or was told how many it missed.
func TestFollowersFlood(t *testing.T) {
	testkit.SkipShort(t, "starts the refreshd binary")
	t.Parallel()
	e := newEnv(t)
	const lines = 50000
	e.writePlan("chatty", fmt.Sprintf("plan: chatty\nsteps:\n  - id: talk\n    run: [sh, -c, \"sleep 1; seq 1 %d\"]\n", lines))
	d := e.start(nil)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tr, err := e.client().Trigger(ctx, "chatty")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var complete, told atomic.Int32
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, skipped := 0, false
			err := e.client().Logs(ctx, tr.Run, "", true, func(line string) error {
				if strings.Contains(line, "lines skipped") {
					skipped = true
				} else {
					got++
				}
				if i%5 != 0 { // most followers are slow readers
					time.Sleep(50 * time.Microsecond)
				}
				return nil
			})
			switch {
			case err != nil:
				t.Errorf("follower %d: %v", i, err)
			case got >= lines:
				complete.Add(1)
			case skipped:
				told.Add(1)
			default:
				t.Errorf("follower %d got %d of %d lines and no marker", i, got, lines)
			}
		}()
	}
	r := e.waitRun("chatty", tr.Run, 90*time.Second)
	wg.Wait()
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	f, err := os.Open(attemptLog(t, r, "talk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		if sc.Text() != strconv.Itoa(n) {
			t.Fatalf("log line %d is %q", n, sc.Text())
		}
	}
	if n != lines {
		t.Errorf("attempt log has %d lines, want %d", n, lines)
	}
	t.Logf("followers: %d got every line, %d were told they missed some", complete.Load(), told.Load())
	if err := d.Signal(0); err != nil {
		t.Errorf("daemon gone: %v", err)
	}
}

// TestNoNewlineFlood runs a step that writes 64 MiB without a newline: the log keeps every
// byte (broken into 64 KiB lines), and the daemon's memory stays bounded during and after.
func TestNoNewlineFlood(t *testing.T) {
	testkit.SkipShort(t, "starts the refreshd binary")
	t.Parallel()
	e := newEnv(t)
	const size = 64 << 20
	e.writePlan("flood", fmt.Sprintf("plan: flood\nsteps:\n  - id: pour\n    run: [sh, -c, \"yes x | tr -d '\\\\n' | head -c %d\"]\n", size))
	d := e.start(nil)
	r := e.triggerWait("flood", 120*time.Second)
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	data, err := os.ReadFile(attemptLog(t, r, "pour"))
	if err != nil {
		t.Fatal(err)
	}
	if x := strings.Count(string(data), "x"); x != size {
		t.Errorf("log holds %d of %d bytes", x, size)
	}
	peak := procStatusKB(t, d.Pid(), "VmHWM")
	t.Logf("daemon peak RSS %d MiB for %d MiB of output", peak>>10, size>>20)
	if peak > 150<<10 {
		t.Errorf("daemon peak RSS %d MiB for a 64 MiB flood, want under 150 MiB", peak>>10)
	}
}

// TestIdleConnectionFlood holds 1,000 idle connections to the control socket, some silent,
// some after a request: the daemon's descriptors stay bounded, a scheduled plan keeps
// running meanwhile, and once the flood stops the CLI answers again.
func TestIdleConnectionFlood(t *testing.T) {
	testkit.SkipShort(t, "starts the refreshd binary")
	t.Parallel()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 4096 && lim.Max >= 4096 {
		lim.Cur = 4096
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	e := newEnv(t)
	ticks := filepath.Join(e.dir, "ticks")
	e.writePlan("tick", fmt.Sprintf("plan: tick\nschedule: \"* * * * * *\"\nsteps:\n  - id: t\n    run: [sh, -c, \"echo tick >> %s\"]\n", ticks))
	d := e.start(nil)
	count := func() int { b, _ := os.ReadFile(ticks); return strings.Count(string(b), "tick") }
	base := openFDs(t, d.Pid())

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 1000 {
		c, err := net.Dial("unix", e.socket)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i%2 == 0 {
			fmt.Fprint(c, "GET /v1/status HTTP/1.1\r\nHost: refreshd\r\n\r\n")
		}
		conns = append(conns, c)
	}
	peak := 0
	for range 20 {
		peak = max(peak, openFDs(t, d.Pid()))
		time.Sleep(100 * time.Millisecond)
	}
	if peak > base+300 {
		t.Errorf("daemon held %d descriptors (from %d) under 1,000 idle connections", peak, base)
	}
	before := count()
	time.Sleep(3 * time.Second)
	if after := count(); after <= before {
		t.Errorf("scheduled runs stopped under the flood: %d then %d", before, after)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testkit.WaitFor(t, "the CLI to answer after the flood", 30*time.Second, func() bool {
		_, _, code := e.cli("status")
		return code == 0
	})
}

// TestSecretEncodingsNeverLeak has a step print its secret in the encodings tools use (a
// multi-line PEM, base64 of "user:"+secret, percent-encoding, JSON): neither the attempt
// log, nor `refreshd logs`, nor the daemon's own log holds any of them.
func TestSecretEncodingsNeverLeak(t *testing.T) {
	testkit.SkipShort(t, "starts the refreshd binary")
	t.Parallel()
	e := newEnv(t)
	pem := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7Zq9sQ3mK8pLx\n-----END PRIVATE KEY-----\n"
	secretFile := filepath.Join(e.dir, "key.pem")
	if err := os.WriteFile(secretFile, []byte(pem), 0o600); err != nil {
		t.Fatal(err)
	}
	line := "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
	script := strings.Join([]string{
		`printf '%s' "$KEY"`,
		`echo`,
		`printf 'user:%s' "$KEY" | base64 -w0; echo`,
		`printf 'x-access-token:%s' "$KEY" | base64 -w0; echo`,
		`printf '%s' "$KEY" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g'; echo`,
		`printf '{"key":%s}\n' "$(printf '%s' "$KEY" | sed 's/$/\\n/' | tr -d '\n' | sed 's/^/"/; s/$/"/')"`,
	}, "; ")
	e.writePlan("leak", fmt.Sprintf(`plan: leak
secrets:
  KEY: {file: %s}
steps:
  - id: show
    secrets: [KEY]
    run: [sh, -c, %q]
`, secretFile, script))
	d := e.start(nil)
	r := e.triggerWait("leak", 30*time.Second)
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	logFile, err := os.ReadFile(attemptLog(t, r, "show"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := e.cli("logs", r.ID)
	// The middle of each form the step printed: what a reader could decode the key from.
	var pct strings.Builder
	for _, b := range []byte(pem) {
		fmt.Fprintf(&pct, "%%%02x", b)
	}
	forbidden := []string{line, "BKcwggSjAgEAAoIBAQC7Zq9sQ3mK8pLx",
		base64.StdEncoding.EncodeToString([]byte("user:" + pem))[12:60],
		base64.StdEncoding.EncodeToString([]byte("x-access-token:" + pem))[24:72],
		pct.String()[60:120], url.QueryEscape(pem)[30:60]}
	for where, text := range map[string]string{"attempt log": string(logFile), "refreshd logs": out, "daemon log": d.Log()} {
		if !strings.Contains(text, "***") && where != "daemon log" {
			t.Errorf("%s masks nothing:\n%s", where, text)
		}
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("%s leaks %q:\n%s", where, f, text)
			}
		}
	}
}
