package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// publishWorld is a run --local setup whose plan generates a new constraints file on every
// run and publishes it to a bare remote with a slow pre-receive hook: by path (git's
// receive-pack is then a child of refreshd's git push) or over the network (git daemon,
// smart HTTP: the server's receive-pack runs on after the client is gone). Everything it
// starts has its working directory under dir, which is how the test finds survivors.
type publishWorld struct {
	t                        *testing.T
	dir, state, remote, plan string
	network                  bool   // the remote is served (git daemon, smart HTTP), not a path
	noop                     string // a plan that only makes run --local recover
	hookSleep                string // file holding the hook's sleep, in seconds
	hookPID                  string // the hook writes its pid here
	env                      []string
}

// Remotes a publishWorld pushes to.
const (
	byPath     = "path"
	overDaemon = "git daemon"
	overHTTP   = "smart HTTP"
)

func newPublishWorld(t *testing.T) *publishWorld { return newPublishWorldTo(t, byPath) }

func newPublishWorldTo(t *testing.T, kind string) *publishWorld {
	t.Helper()
	testkit.Need(t, "git")
	dir := t.TempDir()
	w := &publishWorld{t: t, dir: dir, state: filepath.Join(dir, "state"), remote: filepath.Join(dir, "remote.git"),
		plan: filepath.Join(dir, "pub.yaml"), noop: filepath.Join(dir, "noop.yaml"),
		hookSleep: filepath.Join(dir, "hook-sleep"), hookPID: filepath.Join(dir, "hook.pid"),
		env: append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")}
	testkit.Git(t, "", "init", "--quiet", "--bare", w.remote)
	hook := filepath.Join(w.remote, "hooks", "pre-receive")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s\nsleep $(cat %s)\n", w.hookPID, w.hookSleep)
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w.setHookSleep("0")
	url := w.remote
	switch kind {
	case overDaemon:
		url, w.network = testkit.ServeGitDaemon(t, w.remote), true
	case overHTTP:
		// The user's git credentials (a credential helper), not a plan token: the start
		// that reconciles runs the no-op plan, which has no token for this repository.
		const token = "kill-test-token"
		url, w.network = testkit.ServeGit(t, w.remote, token), true
		w.env = append(w.env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=credential.helper",
			`GIT_CONFIG_VALUE_0=!f() { test "$1" = get || exit 0; echo username=refreshd; echo password=`+token+`; }; f`)
	}
	plan := fmt.Sprintf(`plan: pub
steps:
  - id: gen
    run: [sh, -c, "mkdir -p out && printf '# generated\npkg==%%s\n' $(date +%%s%%N) > out/constraints.txt"]
  - id: publish
    needs: [gen]
    publish_constraints:
      repo: %s
      branch: constraints
      files: out/constraints.txt
      ignore_lines: "^#"
`, url)
	os.WriteFile(w.plan, []byte(plan), 0o644)
	os.WriteFile(w.noop, []byte("plan: noop\nsteps:\n  - id: a\n    run: [\"true\"]\n"), 0o644)
	return w
}

func (w *publishWorld) setHookSleep(seconds string) {
	if err := os.WriteFile(w.hookSleep, []byte(seconds+"\n"), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// start starts run --local of planFile.
func (w *publishWorld) start(planFile string) *exec.Cmd {
	cmd := exec.Command(refreshd.Path(w.t), "run", "--local", "--state", w.state, planFile)
	cmd.Env = w.env
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	return cmd
}

// recoverState runs the no-op plan: its start recovers what a killed run left.
func (w *publishWorld) recoverState() string {
	w.t.Helper()
	cmd := exec.Command(refreshd.Path(w.t), "run", "--local", "--state", w.state, w.noop)
	cmd.Env = w.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("recovering run: %v\n%s", err, out)
	}
	return string(out)
}

// survivors lists the live processes of refreshd's whose working directory is under dir
// (git in the clone, receive-pack and its hook in a remote it pushes to by path, the steps
// in the workdir). A served remote's receive-pack and hook are the server's, not refreshd's:
// serverBusy tells of those.
func (w *publishWorld) survivors() []string { return w.processesUnder(w.dir, w.network) }

// serverBusy lists the processes in a served remote (receive-pack, its hook) still running.
func (w *publishWorld) serverBusy() []string { return w.processesUnder(w.remote, false) }

func (w *publishWorld) processesUnder(dir string, butRemote bool) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || !strings.HasPrefix(cwd, dir) || butRemote && strings.HasPrefix(cwd, w.remote) || !processRunning(pid) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out = append(out, fmt.Sprintf("%d: %s (in %s)", pid, strings.ReplaceAll(string(cmdline), "\x00", " "), cwd))
	}
	return out
}

// branchRuns maps each run id named by a commit on the remote branch to its commit.
func (w *publishWorld) branchRuns() map[string]string {
	w.t.Helper()
	out, err := testkit.GitCmd(w.t.Context(), w.remote, "log", "--format=%H %B%x1e", "refs/heads/constraints").Output()
	if err != nil {
		return map[string]string{} // no branch yet
	}
	re := regexp.MustCompile(`run (\S+) of plan pub`)
	runs := map[string]string{}
	for _, c := range strings.Split(string(out), "\x1e") {
		sha, msg, _ := strings.Cut(strings.TrimSpace(c), " ")
		if m := re.FindStringSubmatch(msg); m != nil {
			runs[m[1]] = sha
		}
	}
	return runs
}

func publishStep(r history.Run) *history.Step {
	for i := range r.Steps {
		if r.Steps[i].Instance == "publish" {
			return &r.Steps[i]
		}
	}
	return nil
}

// checkHistoryMatchesBranch: every run's record says what the branch holds. A run whose
// commit is on the branch records that commit; every other run records none.
func (w *publishWorld) checkHistoryMatchesBranch() (reconciled []string) {
	w.t.Helper()
	onBranch := w.branchRuns()
	seen := map[string]bool{}
	for _, r := range historyJSON(w.t, refreshd.Path(w.t), w.state) {
		if r.Plan != "pub" {
			continue
		}
		seen[r.ID] = true
		commit, p := "", publishStep(r).Publish
		if p != nil {
			commit = p.Commit
			if p.Reconciled != "" {
				reconciled = append(reconciled, r.ID+": "+p.Reconciled)
			}
		}
		if r.Status == history.StatusRunning {
			w.t.Errorf("run %s still recorded running after recovery", r.ID)
		}
		if commit != onBranch[r.ID] {
			w.t.Errorf("run %s (%s): recorded commit %q, the branch has %q for it (publish record %+v)", r.ID, r.Status, commit, onBranch[r.ID], p)
		}
	}
	for id := range onBranch {
		if !seen[id] {
			w.t.Errorf("the branch has a commit naming run %s, which is not in the history", id)
		}
	}
	return reconciled
}

// kill9 kills run --local and waits for it.
func kill9(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// A kill -9 of refreshd while git push waits on a slow remote: git push dies with it
// (Pdeathsig), what it started (receive-pack and its hook) is stopped by the next start
// (the group was recorded). The branch is still where the push started from, so the next
// start finishes the push (git.Reconcile) and the run is recorded published, as the
// branch then says.
func TestKill9DuringPushLeavesNoGit(t *testing.T) {
	w := newPublishWorld(t)
	w.setHookSleep("30")
	run := w.start(w.plan)
	var hook int
	testkit.WaitFor(t, "the pre-receive hook to start", 30*time.Second, func() bool {
		b, _ := os.ReadFile(w.hookPID)
		hook, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return hook > 0
	})
	t.Cleanup(func() { syscall.Kill(hook, syscall.SIGKILL) })
	kill9(run)
	time.Sleep(200 * time.Millisecond)
	before := w.survivors()
	if !processRunning(hook) {
		t.Fatalf("the hook died with refreshd: the test no longer reproduces git's children outliving it (left: %v)", before)
	}
	t.Logf("left running by the killed refreshd: %v", before)

	w.setHookSleep("0")
	out := w.recoverState()
	if left := w.survivors(); len(left) > 0 {
		t.Errorf("processes of the killed publish survive the next start:\n%s\n%s", strings.Join(left, "\n"), out)
	}
	reconciled := w.checkHistoryMatchesBranch()
	if len(reconciled) != 1 || !strings.Contains(reconciled[0], ": published") {
		t.Errorf("reconciled publishes: %q; want one, published", reconciled)
	}
}

// History equals reality after any kill: kill -9 at random moments of a run that publishes
// to a slow remote (bounded delays, seed logged), the next start recovers; after each,
// nothing of the killed run is left running, and at the end every run's record matches the
// branch.
func TestKill9LoopDuringPublish(t *testing.T) {
	w := newPublishWorld(t)
	w.setHookSleep("0.3")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("seed %d", seed)
	const kills = 12
	for i := range kills {
		run := w.start(w.plan)
		delay := time.Duration(100+rng.IntN(1900)) * time.Millisecond
		time.Sleep(delay)
		kill9(run)
		w.recoverState()
		if left := w.survivors(); len(left) > 0 {
			t.Errorf("kill %d after %s: processes of the killed run survive the next start:\n%s", i, delay, strings.Join(left, "\n"))
			for _, l := range left {
				pid, _, _ := strings.Cut(l, ":")
				if p, err := strconv.Atoi(pid); err == nil {
					syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
	}
	// One last run to its end: publishing still works after all that.
	last := w.start(w.plan)
	if err := last.Wait(); err != nil {
		t.Errorf("run after the kills: %v", err)
	}
	reconciled := w.checkHistoryMatchesBranch()
	t.Logf("%d kills; %d runs on the branch; reconciled at restart: %d\n%s", kills, len(w.branchRuns()), len(reconciled), strings.Join(reconciled, "\n"))
}

// The record is the branch, for network remotes too: kill -9 (at a random moment of the
// run, or while the remote's pre-receive hook holds the push) or SIGTERM during the push, to
// a real git daemon and a real git http-backend whose receive-pack runs on after refreshd's
// git push is gone; the next start follows at once, while that receive-pack may still be
// about to update the branch. Once the server is done, every run's record matches the
// branch, after every kill. Before git.Reconcile finished a push the branch could still
// take, and before a stop let the push end, a late update put commits on the branch that
// the record called not published (kill -9) or never pushed (SIGTERM).
func TestKillDuringNetworkPush(t *testing.T) {
	for _, kind := range []string{overDaemon, overHTTP} {
		t.Run(kind, func(t *testing.T) {
			testkit.SkipShort(t, "kills refreshd during pushes to a git daemon and a git http-backend")
			w := newPublishWorldTo(t, kind)
			const hook = 1500 * time.Millisecond
			w.setHookSleep(fmt.Sprint(hook.Seconds()))
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, seed))
			t.Logf("seed %d", seed)
			const kills = 12
			var term time.Duration
			for i := range kills {
				os.Remove(w.hookPID)
				run := w.start(w.plan)
				how := "kill -9 while the hook runs"
				switch i % 4 {
				case 0:
					how = "kill -9 at a random moment"
					time.Sleep(time.Duration(200+rng.IntN(2000)) * time.Millisecond)
				case 3:
					how = "SIGTERM while the hook runs"
					fallthrough
				default:
					testkit.WaitFor(t, "the pre-receive hook to start", 30*time.Second, func() bool {
						_, err := os.Stat(w.hookPID)
						return err == nil
					})
					time.Sleep(time.Duration(rng.Int64N(int64(hook * 9 / 10))))
				}
				if i%4 == 3 {
					start := time.Now()
					run.Process.Signal(syscall.SIGTERM)
					run.Wait()
					term = max(term, time.Since(start))
				} else {
					kill9(run)
					w.recoverState()
				}
				if left := w.survivors(); len(left) > 0 {
					t.Errorf("kill %d (%s): processes of the killed run survive:\n%s", i, how, strings.Join(left, "\n"))
				}
				// The server's receive-pack of the cut push may still update the branch:
				// the record must hold once it is done.
				testkit.WaitFor(t, "the server's receive-pack to end", 30*time.Second, func() bool { return len(w.serverBusy()) == 0 })
				if reconciled := w.checkHistoryMatchesBranch(); t.Failed() {
					t.Fatalf("kill %d (%s): the record is not the branch; reconciled: %q", i, how, reconciled)
				}
			}
			reconciled := w.checkHistoryMatchesBranch()
			t.Logf("%s: %d kills; %d runs on the branch; reconciled at restart: %d; longest SIGTERM stop %s\n%s", kind, kills,
				len(w.branchRuns()), len(reconciled), term.Round(time.Millisecond), strings.Join(reconciled, "\n"))
		})
	}
}
