package systemd

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Plans the test adds to the installed ones.
const (
	// hardening shows what a step may do under the unit: write its workdir, run git and
	// buildx, and nothing more (no privileges, a seccomp filter, no capabilities).
	hardeningPlan = `plan: hardening
timeout: 10m
steps:
  - id: buildx-version
    run: [docker, buildx, version]
  - id: write-workdir
    run: [/bin/sh, -c, 'set -e; echo hello > out.txt; git init -q repo && cd repo && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m x; grep -E "NoNewPrivs|Seccomp:|CapEff" /proc/self/status']
`
	// failing fails: its failure must reach `journalctl -p err` with its reason.
	failingPlan = `plan: failing
steps:
  - id: fails
    run: [/bin/sh, -c, 'echo about to fail; exit 3']
`
	// sleeper has a step that sleeps and one that ignores SIGTERM and has children: a stop
	// must leave neither behind.
	sleeperPlan = `plan: sleeper
kill_grace: 2s
steps:
  - id: sleep
    run: [sleep, "600"]
  - id: stubborn
    run: [/bin/sh, -c, 'trap "echo got TERM, ignoring" TERM; sleep 600 & sleep 600 & while true; do wait; done']
`
)

// TestUnderSystemd boots systemd 252 as PID 1 of a container, installs refreshd as the
// README says, and checks the unit as an operator relies on it: notify and status, a real
// demo run under the hardening, a synchronous reload that fails on a bad plan while the old
// one keeps running, journal priorities and fields, socket permissions, watchdog pings, a
// stop during a long step, and the unit's exposure.
func TestUnderSystemd(t *testing.T) {
	testkit.Need(t, "systemd-nspawn", "nsenter", "docker", "buildkitd", "buildctl", "git", "go")
	needContainer(t)
	plugin := "/usr/local/lib/docker/cli-plugins"
	if _, err := os.Stat(filepath.Join(plugin, "docker-buildx")); err != nil {
		testkit.SkipOrFail(t, "docker buildx plugin missing (run scripts/install-stack.sh)")
	}
	began := time.Now()
	phase := func(what string, since time.Time) { t.Logf("%-44s %5.1fs", what, time.Since(since).Seconds()) }

	stage := stageCheckout(t)
	demo := t.TempDir() // the demo stack's directory, on a real filesystem (buildkitd's snapshots)
	// Go as the build box has it, and the host's module and build caches so that `make build`
	// compiles offline (the container has no network) and from cache.
	goroot, gomod, gocache := goEnv(t, "GOROOT"), goEnv(t, "GOMODCACHE"), goEnv(t, "GOCACHE")
	binds := []string{plugin + ":" + plugin, goroot + ":/usr/local/go", gomod + ":/root/go/pkg/mod"}
	for _, name := range []string{"docker", "buildkitd", "buildctl"} {
		p, _ := exec.LookPath(name)
		binds = append(binds, p+":/usr/local/bin/"+name)
	}
	c := boot(t, binds, []string{stage + ":/root/refreshd", gocache + ":/root/.cache/go-build", demo + ":/srv/refreshd-demo"})
	phase("boot (systemd running)", began)

	// The README's install section (the manual way), verbatim, in the checkout.
	t0 := time.Now()
	out := c.must(5*time.Minute, "cd /root/refreshd\nexport GOPROXY=off PATH=$PATH:/usr/local/go/bin\nset -x\n"+readmeBlocks(t, "install-manual"))
	if !strings.Contains(out, "airflow/main") {
		t.Errorf("refreshd status after the README's steps does not list airflow/main:\n%s", out)
	}
	// What the section installed: the schema for editors, the binary make build made.
	if out := c.must(10*time.Second, "refreshd schema | cmp - /etc/refreshd/plan.schema.json && cmp /root/refreshd/bin/refreshd /usr/local/bin/refreshd && echo same"); !strings.Contains(out, "same") {
		t.Errorf("after the README's steps: %s", out)
	}
	phase("README install steps", t0)

	// The demo stack (registry, two buildkitd nodes, constraints repository) inside, and what
	// `systemctl edit refreshd` would add for it: its workdirs, its plain-http registry, and a
	// short watchdog so that pings show within the test.
	t0 = time.Now()
	// One Python version instead of the demo's two (stack.sh writes STACK_PYTHONS into the
	// sample's python-versions.txt, the list the plan reads from the tree): the same steps,
	// half the builds. The rootfs's own docker-registry service is not the stack's.
	c.must(3*time.Minute, `systemctl disable --now docker-registry >/dev/null 2>&1 || true
STACK_PYTHONS=3.11 bash /root/refreshd/scripts/stack.sh up /srv/refreshd-demo >/srv/refreshd-demo/stack-up.log 2>&1 || { tail -30 /srv/refreshd-demo/stack-up.log; exit 1; }
chown -R refreshd:refreshd /srv/refreshd-demo/project /srv/refreshd-demo/project-v1-0 /srv/refreshd-demo/docker-config /srv/refreshd-demo/constraints.git /srv/refreshd-demo/sample.git`)
	phase("demo stack up", t0)
	regPort := c.must(10*time.Second, `. /srv/refreshd-demo/stack.env; echo $REGISTRY_PORT`)
	dropIn := fmt.Sprintf(`[Service]
ReadWritePaths=/srv/refreshd-demo
WatchdogSec=4s
ExecStart=
ExecStart=/usr/local/bin/refreshd daemon --plans /etc/refreshd/plans --state /var/lib/refreshd --socket /run/refreshd/refreshd.sock --socket-group refreshd --stop-timeout 80s --plain-http-registry 127.0.0.1:%s
`, strings.TrimSpace(regPort))
	c.must(30*time.Second, fmt.Sprintf(`cat >/etc/systemd/system/refreshd.service.d/demo.conf <<'EOF'
%sEOF
cp /srv/refreshd-demo/plans/demo.yaml /etc/refreshd/plans/demo.yaml
test "$(cat /srv/refreshd-demo/project/python-versions.txt)" = 3.11
cat >/etc/refreshd/plans/hardening.yaml <<'EOF'
%sEOF
cat >/etc/refreshd/plans/sleeper.yaml <<'EOF'
%sEOF
cat >/etc/refreshd/plans/failing.yaml <<'EOF'
%sEOF
refreshd validate /etc/refreshd/plans >/dev/null
useradd -m alice && usermod -aG refreshd alice && useradd -m bob
systemd-analyze log-level debug
systemctl daemon-reload`, dropIn, hardeningPlan, sleeperPlan, failingPlan))
	as := func(user string, timeout time.Duration, args string) (string, error) {
		return c.exec(timeout, "runuser", "-u", user, "--", "bash", "-c", "refreshd "+args)
	}

	t.Run("start: active, READY=1, status", func(t *testing.T) {
		c.must(30*time.Second, "systemctl restart refreshd")
		show := c.must(10*time.Second, "systemctl show refreshd -p ActiveState -p SubState -p StatusText -p Type")
		for _, want := range []string{"ActiveState=active", "SubState=running", "Type=notify", "StatusText=7 plans, 0 running"} {
			if !strings.Contains(show, want) {
				t.Errorf("systemctl show: no %s in\n%s", want, show)
			}
		}
		if out, _ := c.sh(10*time.Second, "journalctl --no-pager -o cat -g 'refreshd.service: Got notification message' | grep READY=1"); !strings.Contains(out, "READY=1") {
			t.Errorf("no READY=1 notification in the journal")
		}
	})

	t.Run("demo run through the socket under the hardening", func(t *testing.T) {
		t0 := time.Now()
		out, err := as("refreshd", 5*time.Minute, "run --wait demo/main")
		phase("demo run (cold)", t0)
		if err != nil || !strings.Contains(out, "succeeded") {
			t.Fatalf("refreshd run --wait demo/main: %v\n%s", err, tail(out, 40))
		}
		out, err = as("refreshd", time.Minute, "run --wait hardening")
		if err != nil {
			t.Fatalf("refreshd run --wait hardening: %v\n%s", err, out)
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`NoNewPrivs:\s+1`), regexp.MustCompile(`Seccomp:\s+2`),
			regexp.MustCompile(`CapEff:\s+0000000000000000`), regexp.MustCompile(`github.com/docker/buildx`),
		} {
			if !want.MatchString(out) {
				t.Errorf("hardening run output lacks %s:\n%s", want, out)
			}
		}
		if out, _ := c.sh(10*time.Second, `journalctl -u refreshd --no-pager -o cat | grep -v PR_SET_MM_ARG_START | grep -iE 'operation not permitted|read-only file system|bad system call|permission denied' || true`); strings.TrimSpace(out) != "" {
			t.Errorf("denials in the daemon's journal:\n%s", out)
		}
	})

	t.Run("reload: waits, fails on a bad plan, old plan keeps running", func(t *testing.T) {
		c.must(10*time.Second, `cp /etc/refreshd/plans/hardening.yaml /root/hardening.good
sed -i 's/^timeout: 10m/timeout: 10m\noverlap: sometimes/' /etc/refreshd/plans/hardening.yaml`)
		out, err := c.sh(30*time.Second, "systemctl reload refreshd")
		if err == nil {
			t.Errorf("systemctl reload with a bad plan succeeded:\n%s", out)
		}
		if show := c.must(10*time.Second, "systemctl show refreshd -p ActiveState -p StatusText"); !strings.Contains(show, "ActiveState=active") || !strings.Contains(show, "1 plan load errors") {
			t.Errorf("after the failed reload:\n%s", show)
		}
		out, err = as("refreshd", 10*time.Second, "status")
		if err == nil || !strings.Contains(out, "hardening.yaml:3:10") {
			t.Errorf("refreshd status after the bad reload: %v, want exit 1 naming hardening.yaml:3:10\n%s", err, out)
		}
		if out, err := as("refreshd", time.Minute, "run --wait hardening"); err != nil {
			t.Errorf("the old hardening plan does not run: %v\n%s", err, out)
		}
		c.must(10*time.Second, "cp /root/hardening.good /etc/refreshd/plans/hardening.yaml")
		if out, err := c.sh(30*time.Second, "systemctl reload refreshd"); err != nil {
			t.Errorf("systemctl reload with the plan fixed: %v\n%s", err, out)
		}
		// Synchronous: the daemon's READY=1 came before the reload job ended.
		jr := c.must(10*time.Second, `journalctl --no-pager -o cat -g 'refreshd.service: (Got notification message.*READY=1|Control process exited|Reload failed|reload finished)' | tail -6`)
		t.Logf("journal of the last reloads:\n%s", jr)
		// Each reload job's control process (refreshd reload) exits after the daemon's
		// READY=1 for that reload: a kill -HUP would exit before it.
		lines := strings.Split(strings.TrimSpace(jr), "\n")
		sinceExit := 0
		for _, l := range lines {
			switch {
			case strings.Contains(l, "READY=1"):
				sinceExit++
			case strings.Contains(l, "Control process exited"):
				if sinceExit == 0 {
					t.Errorf("a reload's control process exited before the daemon's READY=1:\n%s", jr)
				}
				sinceExit = 0
			}
		}
	})

	t.Run("journal: priorities and fields", func(t *testing.T) {
		if out, err := as("refreshd", time.Minute, "run --wait failing"); err == nil {
			t.Errorf("refreshd run --wait failing succeeded:\n%s", out)
		}
		// A failed run and its failed step are errors, each with its reason. journald stores
		// what the daemon sent in its own time: the run may have ended a moment before.
		wants := []*regexp.Regexp{
			regexp.MustCompile(`step finished .*plan=failing .*step=fails status=failed .*reason="attempt 1 of 1: exit code 3"`),
			regexp.MustCompile(`run finished .*plan=failing .*status=failed .*reason="step fails failed: attempt 1 of 1: exit code 3"`),
		}
		var errs string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			errs = c.must(10*time.Second, "journalctl -u refreshd -p err --no-pager -o cat")
			if !slices.ContainsFunc(wants, func(re *regexp.Regexp) bool { return !re.MatchString(errs) }) || time.Now().After(deadline) {
				break
			}
		}
		if !strings.Contains(errs, "plan did not load") {
			t.Errorf("journalctl -p err lacks the plan load error:\n%s", errs)
		}
		for _, want := range wants {
			if !want.MatchString(errs) {
				t.Errorf("journalctl -p err lacks %q:\n%s", want, errs)
			}
		}
		// CODE_FILE names the source relative to the module, never the build machine's path.
		files := c.must(10*time.Second, "journalctl -u refreshd --no-pager -o json PLAN=failing | grep -o '\"CODE_FILE\":\"[^\"]*\"' | sort -u")
		if !strings.Contains(files, `"CODE_FILE":"executor/`) || strings.Contains(files, `"CODE_FILE":"/`) {
			t.Errorf("CODE_FILE of plan failing's entries:\n%s", files)
		}
		for _, info := range []string{"daemon ready", "run starting", "output "} {
			if strings.Contains(errs, info) {
				t.Errorf("journalctl -p err shows an INFO line (%s):\n%s", info, errs)
			}
		}
		js := c.must(10*time.Second, "journalctl -u refreshd --no-pager -o json PLAN=hardening STEP=write-workdir")
		var found bool
		for line := range strings.Lines(js) {
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) != nil {
				continue
			}
			if e["PRIORITY"] == "6" && e["RUN"] != nil && e["ATTEMPT"] == "1" && e["SYSLOG_IDENTIFIER"] == "refreshd" {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no INFO entry with PLAN=hardening STEP=write-workdir RUN ATTEMPT=1 in the journal:\n%s", tail(js, 5))
		}
	})

	t.Run("socket permissions", func(t *testing.T) {
		modes := c.must(10*time.Second, "stat -c '%a %U:%G %F' /run/refreshd /run/refreshd/refreshd.sock")
		t.Logf("%s", modes)
		if !strings.Contains(modes, "750 refreshd:refreshd directory") || !strings.Contains(modes, "660 refreshd:refreshd socket") {
			t.Errorf("modes:\n%s", modes)
		}
		if out, err := as("alice", 10*time.Second, "status"); err != nil {
			t.Errorf("alice (group refreshd): %v\n%s", err, out)
		}
		if out, err := as("bob", 10*time.Second, "status"); err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("bob (not in the group): %v\n%s", err, out)
		}
	})

	t.Run("watchdog pings", func(t *testing.T) {
		out := c.must(10*time.Second, "journalctl --no-pager -o cat -g 'refreshd.service: Got notification message.*WATCHDOG=1' | wc -l")
		if n, _ := strconv.Atoi(strings.TrimSpace(out)); n < 2 {
			t.Errorf("%d watchdog pings in the journal, want them every 2s", n)
		}
		// And STATUS= names no run once the runs have ended.
		if show := c.must(10*time.Second, "systemctl show refreshd -p NRestarts -p StatusText"); !strings.Contains(show, "NRestarts=0") || !strings.Contains(show, "StatusText=7 plans, 0 running\n") {
			t.Errorf("after the runs: %s", show)
		}
	})

	t.Run("stop during a long step", func(t *testing.T) {
		run, err := as("refreshd", 10*time.Second, "run sleeper")
		if err != nil {
			t.Fatalf("run sleeper: %v\n%s", err, run)
		}
		run = strings.TrimSpace(run)
		// [s]leep: the pattern must not match the shell that runs pgrep.
		c.must(30*time.Second, `for i in $(seq 100); do [ "$(pgrep -c -f '[s]leep 600' || true)" -ge 3 ] && exit 0; sleep 0.1; done; ps -ef; exit 1`)
		t0 := time.Now()
		c.must(2*time.Minute, "systemctl stop refreshd")
		phase("systemctl stop during two steps", t0)
		if left, _ := c.sh(10*time.Second, "pgrep -a -f '[s]leep 600|[i]gnoring' || true"); strings.TrimSpace(left) != "" {
			t.Errorf("left after the stop:\n%s", left)
		}
		// No daemon now: an operator in the daemon's group reads its history from the state
		// directory, without flags, and is told which store that is (on stderr).
		out, err := as("alice", 10*time.Second, "history -o json sleeper 2>/tmp/alice-history.err")
		var runs []struct{ ID, Status, Reason string }
		if err != nil || json.Unmarshal([]byte(out), &runs) != nil || len(runs) == 0 {
			c.must(10*time.Second, "systemctl start refreshd")
			t.Fatalf("alice: refreshd history with the daemon stopped: %v\n%s", err, out)
		}
		if said := c.must(10*time.Second, "cat /tmp/alice-history.err"); !strings.Contains(said, "reading the store in /var/lib/refreshd") {
			t.Errorf("history with the daemon stopped does not say which store it read: %q", said)
		}
		c.must(30*time.Second, "systemctl start refreshd")
		if runs[0].ID != run || runs[0].Status != "interrupted" || !strings.Contains(runs[0].Reason, "stopping") {
			t.Errorf("run %s after the stop: %+v, want interrupted by the stop", run, runs[0])
		}
	})

	t.Run("crash: restarted, the run recorded interrupted", func(t *testing.T) {
		run, err := as("refreshd", 10*time.Second, "run sleeper")
		if err != nil {
			t.Fatalf("run sleeper: %v\n%s", err, run)
		}
		run = strings.TrimSpace(run)
		c.must(30*time.Second, `for i in $(seq 100); do [ "$(pgrep -c -f '[s]leep 600' || true)" -ge 3 ] && exit 0; sleep 0.1; done; exit 1`)
		c.must(10*time.Second, "systemctl kill --kill-whom=main --signal=SIGKILL refreshd")
		// Restart=on-failure, RestartSec=5s.
		c.must(time.Minute, `for i in $(seq 300); do systemctl show refreshd -p NRestarts | grep -q NRestarts=1 && systemctl is-active -q refreshd && exit 0; sleep 0.2; done; systemctl status refreshd --no-pager; exit 1`)
		if left, _ := c.sh(10*time.Second, "pgrep -a -f '[s]leep 600|[i]gnoring' || true"); strings.TrimSpace(left) != "" {
			t.Errorf("left after the crash and restart:\n%s", left)
		}
		out, err := as("alice", 10*time.Second, "logs "+run)
		if err != nil || !strings.Contains(out, "interrupted") || strings.Contains(out, "not started") {
			t.Errorf("refreshd logs %s after the crash: %v, want the attempts interrupted, none 'not started':\n%s", run, err, out)
		}
	})

	t.Run("exposure", func(t *testing.T) {
		out := c.must(30*time.Second, "systemd-analyze security refreshd.service --no-pager")
		m := regexp.MustCompile(`Overall exposure level for refreshd.service: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		level, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("systemd-analyze security refreshd.service: exposure %.1f", level)
		if level > 2.0 {
			t.Errorf("exposure %.1f, want 2.0 or below:\n%s", level, out)
		}
	})
	phase("whole test", began)
}

// readmeBlocks is a part of the README's install section as an operator would paste it: the
// sh blocks between the markers <!-- NAME --> and <!-- /NAME --> (install-manual: the manual
// way; install-package: the Debian package).
func readmeBlocks(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "<!-- "+name+" -->")
	if !ok {
		t.Fatalf("README.md has no <!-- %s --> marker", name)
	}
	section, _, ok = strings.Cut(section, "<!-- /"+name+" -->")
	if !ok {
		t.Fatalf("README.md: the %s section does not end (<!-- /%s -->)", name, name)
	}
	var steps strings.Builder
	for {
		_, rest, ok := strings.Cut(section, "```sh\n")
		if !ok {
			break
		}
		block, after, ok := strings.Cut(rest, "```")
		if !ok {
			t.Fatalf("README.md: an sh block of the %s section does not end", name)
		}
		steps.WriteString(block)
		section = after
	}
	if steps.Len() == 0 {
		t.Fatalf("README.md: no sh block between the %s markers", name)
	}
	return steps.String()
}

// stageCheckout makes the checkout the README's steps run in: the files git tracks (and the
// new ones it does not ignore), without bin/: `make build` in the container builds it.
func stageCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := testkit.Git(t, "../..", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	args := []string{"-a", "--parents"}
	for _, f := range strings.Split(strings.TrimRight(files, "\x00"), "\x00") {
		if _, err := os.Lstat(filepath.Join("../..", f)); err == nil { // not deleted in the work tree
			args = append(args, f)
		}
	}
	cp := exec.Command("cp", append(args, dir)...)
	cp.Dir = "../.."
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("stage the checkout: %v\n%s", err, out)
	}
	return dir
}

// goEnv is `go env NAME` of the Go the tests run with.
func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
