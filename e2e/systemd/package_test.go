package systemd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// makeDeb runs make deb into dir with env added, and returns the package's path.
func makeDeb(t *testing.T, dir string, env ...string) string {
	t.Helper()
	cmd := exec.Command("make", "-s", "-C", "../..", "deb", "DEB_OUT="+dir)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make deb %v: %v\n%s%s", env, err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// debVersion is build-deb.sh's mapping of a git describe output to a Debian version.
func debVersion(t *testing.T, describe string, count int) (string, error) {
	t.Helper()
	out, err := exec.Command("bash", "../../scripts/build-deb.sh", "--version", describe, fmt.Sprint(count)).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestDebVersion maps git describe outputs to Debian versions, and checks with dpkg itself
// that the versions of a history, commit after commit and tag after tag, only go up.
func TestDebVersion(t *testing.T) {
	for _, tt := range []struct {
		describe string
		count    int
		want     string // "" for an error
	}{
		{"v1.2.3", 40, "1.2.3"},
		{"v1.2.3-rc.1", 40, "1.2.3~rc.1"},
		{"v1.2.3-5-gabc1234", 45, "1.2.3+5.gabc1234"},
		{"v1.2.3-rc.1-5-gabc1234", 45, "1.2.3~rc.1+5.gabc1234"},
		{"v1.2.3-5-gabc1234-dirty", 45, "1.2.3+5.gabc1234.dirty"},
		{"abc1234", 276, "0~276.gabc1234"},
		{"abc1234-dirty", 276, "0~276.gabc1234.dirty"},
		{"v2", 3, "2"},
		{"release-1", 3, ""},               // not a version tag (make deb matches v[0-9]* only)
		{"v1.2.3;rm -rf /", 3, ""},         // a hostile tag never reaches the control file
		{"v1.2.3-5-gabc1234\nX: y", 3, ""}, // nor a second field
		{"abc1234", -1, ""},
	} {
		got, err := debVersion(t, tt.describe, tt.count)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: %q, want an error", tt.describe, got)
			} else if !strings.Contains(got, "set DEB_VERSION") {
				t.Errorf("%q: error %q does not say what to do", tt.describe, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q (%d commits): %q, %v; want %q", tt.describe, tt.count, got, err, tt.want)
		}
	}

	t.Run("dpkg orders a history", func(t *testing.T) {
		testkit.Need(t, "dpkg")
		// A history as git describe tells it: untagged commits, a release candidate, the
		// release, commits after it (past 9, where a text comparison would go wrong), the
		// next candidate and release.
		var history [][2]string // describe, commit count
		n := 0
		commit := func(describe string) {
			n++
			history = append(history, [2]string{describe, fmt.Sprint(n)})
		}
		for range 3 {
			commit(fmt.Sprintf("%07x", n*977))
		}
		commit("v0.1.0-rc.1")
		for i := 1; i <= 2; i++ {
			commit(fmt.Sprintf("v0.1.0-rc.1-%d-g%07x", i, n*977))
		}
		commit("v0.1.0-rc.2")
		commit("v0.1.0")
		for i := 1; i <= 12; i++ {
			commit(fmt.Sprintf("v0.1.0-%d-g%07x", i, n*977))
		}
		commit("v0.1.1-rc.1")
		commit("v0.1.1")
		commit("v0.10.0")
		prev := ""
		for _, h := range history {
			var count int
			fmt.Sscan(h[1], &count)
			v, err := debVersion(t, h[0], count)
			if err != nil {
				t.Fatalf("%s: %v: %s", h[0], err, v)
			}
			if prev != "" {
				if err := exec.Command("dpkg", "--compare-versions", v, "gt", prev).Run(); err != nil {
					t.Errorf("%s: %s is not above the previous commit's %s", h[0], v, prev)
				}
			}
			prev = v
		}
	})
}

// TestDebianPackage installs the package make deb builds into a Debian 12 container booted
// with systemd, as an operator would, and takes it through its life: apt install starts the
// service, a plan copied in runs after systemctl reload, the GitHub token reaches it as a
// systemd credential (root-only file, then encrypted), an upgrade to a newer build keeps the
// history and restarts the daemon on the new binary, apt remove stops it and keeps state
// and plans, apt purge leaves nothing of refreshd behind but its system user.
func TestDebianPackage(t *testing.T) {
	testkit.Need(t, "systemd-nspawn", "nsenter", "make", "dpkg-deb", "lintian")
	needContainer(t)
	began := time.Now()
	phase := func(what string, since time.Time) { t.Logf("%-44s %5.1fs", what, time.Since(since).Seconds()) }

	debs := t.TempDir()
	if err := os.Chmod(debs, 0o755); err != nil {
		t.Fatal(err)
	}
	first := makeDeb(t, filepath.Join(debs, "first"))
	phase("make deb", began)
	t0 := time.Now()
	v1 := strings.Split(filepath.Base(first), "_")[1]
	second := makeDeb(t, filepath.Join(debs, "second"), "DEB_VERSION="+v1+"+upgrade", "REFRESHD_VERSION=upgrade-test")
	phase("make deb (the upgrade: a newer version)", t0)
	if fi, err := os.Stat(first); err == nil {
		t.Logf("package %s: %d bytes", filepath.Base(first), fi.Size())
	}

	// lintian reads the package while the container runs it (its result is checked at the end).
	var lintian bytes.Buffer
	lint := exec.Command("lintian", "--tag-display-limit", "0", first)
	lint.Stdout, lint.Stderr = &lintian, &lintian
	if err := lint.Start(); err != nil {
		t.Fatalf("lintian: %v", err)
	}
	defer lint.Process.Kill()

	c := boot(t, []string{debs + ":/root/debs"}, nil)
	t0 = time.Now()
	// What the file system holds of refreshd before the package: nothing (the test's own
	// files aside), so that after the purge the same command must print nothing either.
	leftovers := `find / -xdev \( -path /proc -o -path /sys -o -path /root -o -path /var/log/journal \) -prune -o -name '*refreshd*' -print | sort
ls -d /run/refreshd 2>/dev/null || true`
	if out := c.must(30*time.Second, leftovers); strings.TrimSpace(out) != "" {
		t.Fatalf("the root filesystem holds refreshd before the package is installed:\n%s", out)
	}

	// The README's package steps, verbatim, where the package is: make deb ran above (on the
	// host, which has Go; the container has no network).
	steps, ok := strings.CutPrefix(readmeBlocks(t, "install-package"), "make deb ")
	if !ok {
		t.Fatalf("the README's package block does not start with make deb")
	}
	_, steps, _ = strings.Cut(steps, "\n")
	out := c.must(2*time.Minute, "cd /root/debs/first\nset -x\n"+steps)
	if !strings.Contains(out, "airflow/main") {
		t.Errorf("refreshd status after the README's package steps does not list airflow/main:\n%s", out)
	}
	show := c.must(10*time.Second, "systemctl show refreshd -p ActiveState -p UnitFileState -p StatusText -p MainPID")
	for _, want := range []string{"ActiveState=active", "UnitFileState=enabled", "StatusText=2 plans"} {
		if !strings.Contains(show, want) {
			t.Errorf("after the README's package steps: no %s in\n%s", want, show)
		}
	}
	c.must(10*time.Second, `id refreshd && stat -c '%U:%G %a' /var/lib/refreshd | grep -qx 'refreshd:refreshd 750'
test -f /usr/share/refreshd/plan.schema.json && test -f /usr/share/refreshd/monitoring/refreshd.rules.yml
refreshd validate /etc/refreshd/examples >/dev/null`)
	phase("README package steps: installed, plan loaded", t0)

	// A plan copied in, reading the token from a credential; its step prints the token's
	// hash (the value itself is masked in all output).
	c.must(10*time.Second, `cat >/root/token-plan.yaml <<'EOF'
plan: token
secrets:
  GITHUB_TOKEN: { credential: github-token }
steps:
  - id: hash
    secrets: [GITHUB_TOKEN]
    run: [/bin/sh, -c, 'printf %s "$GITHUB_TOKEN" | sha256sum']
EOF
cp /root/token-plan.yaml /etc/refreshd/plans/token.yaml
systemctl reload refreshd
refreshd status | grep -q token`)

	tokenRun := func(t *testing.T, token string) {
		t.Helper()
		out, err := c.sh(time.Minute, "refreshd run --wait token")
		sum := sha256.Sum256([]byte(token))
		if err != nil || !strings.Contains(out, hex.EncodeToString(sum[:])) {
			t.Errorf("refreshd run --wait token: %v; want the hash of %q in\n%s", err, token, out)
		}
	}
	t.Run("credential: none yet, the run names what is missing", func(t *testing.T) {
		out, err := c.sh(time.Minute, "refreshd run --wait token")
		if err == nil || !strings.Contains(out, "credential github-token: read /run/credentials/refreshd.service/github-token: no such file or directory (the service got no credential of that name") {
			t.Errorf("refreshd run --wait token with no credential: %v, want it to fail naming the credential:\n%s", err, out)
		}
		// Outside the unit (a run by hand) there is no credentials directory at all.
		out, err = c.sh(time.Minute, "refreshd run --local /etc/refreshd/plans/token.yaml")
		if err == nil || !strings.Contains(out, "credential github-token: $CREDENTIALS_DIRECTORY is not set") {
			t.Errorf("refreshd run --local: %v, want it to fail naming $CREDENTIALS_DIRECTORY:\n%s", err, out)
		}
	})
	t.Run("credential: root-only file in /etc/credstore, the unit's LoadCredential=", func(t *testing.T) {
		c.must(30*time.Second, `install -d -m700 /etc/credstore
( umask 077; printf 'ghp_rootonly\n' >/etc/credstore/github-token )
systemctl restart refreshd`)
		if out, err := c.sh(10*time.Second, "runuser -u refreshd -- cat /etc/credstore/github-token"); err == nil {
			t.Errorf("user refreshd can read the root-only token file: %s", out)
		}
		tokenRun(t, "ghp_rootonly")
	})
	t.Run("credential: encrypted, a drop-in's LoadCredentialEncrypted=", func(t *testing.T) {
		c.must(30*time.Second, `rm /etc/credstore/github-token
install -d -m700 /etc/credstore.encrypted
printf 'ghp_encrypted\n' | systemd-creds encrypt --name=github-token - /etc/credstore.encrypted/github-token
! grep -q ghp_encrypted /etc/credstore.encrypted/github-token
mkdir -p /etc/systemd/system/refreshd.service.d
printf '[Service]\nLoadCredentialEncrypted=github-token:/etc/credstore.encrypted/github-token\n' >/etc/systemd/system/refreshd.service.d/credentials.conf
systemctl daemon-reload && systemctl restart refreshd`)
		tokenRun(t, "ghp_encrypted")
	})
	t.Run("upgrade: history kept, restarted on the new binary", func(t *testing.T) {
		t0 := time.Now()
		before := c.must(10*time.Second, "systemctl show refreshd -p MainPID --value; refreshd history token | wc -l")
		c.must(2*time.Minute, "apt-get install -y -q /root/debs/second/"+filepath.Base(second)+" >/root/apt-upgrade.log 2>&1 || { cat /root/apt-upgrade.log; exit 1; }")
		phase("apt install (upgrade)", t0)
		after := c.must(10*time.Second, "systemctl show refreshd -p MainPID --value; refreshd history token | wc -l")
		b, a := strings.Fields(before), strings.Fields(after)
		if len(b) != 2 || len(a) != 2 || a[0] == b[0] || a[0] == "0" || a[1] != b[1] {
			t.Errorf("MainPID and history lines before the upgrade %q, after %q: want a new pid and the same history", b, a)
		}
		out := c.must(10*time.Second, `systemctl is-active refreshd; readlink /proc/$(systemctl show refreshd -p MainPID --value)/exe; refreshd version; dpkg-query -W -f '${Version}' refreshd`)
		for _, want := range []string{"active\n/usr/bin/refreshd\n", "upgrade-test", v1 + "+upgrade"} {
			if !strings.Contains(out, want) {
				t.Errorf("after the upgrade: no %q in\n%s", want, out)
			}
		}
		if strings.Contains(out, "(deleted)") {
			t.Errorf("the daemon still runs the replaced binary:\n%s", out)
		}
		tokenRun(t, "ghp_encrypted")
	})

	t.Run("remove: stopped, state and plans kept", func(t *testing.T) {
		c.must(2*time.Minute, "apt-get remove -y -q refreshd >/root/apt-remove.log 2>&1 || { cat /root/apt-remove.log; exit 1; }")
		out, _ := c.sh(10*time.Second, "systemctl is-active refreshd || true; pgrep -u refreshd -c || true")
		if !strings.HasPrefix(out, "inactive\n0") {
			t.Errorf("after apt remove: %q, want the service inactive and no process of user refreshd", out)
		}
		c.must(10*time.Second, "test -f /var/lib/refreshd/history.db && test -f /etc/refreshd/plans/token.yaml && ! test -e /usr/bin/refreshd")
	})

	t.Run("purge: nothing left", func(t *testing.T) {
		// The drop-in is the admin's, not the package's: the README says to revert it first.
		c.must(2*time.Minute, "systemctl revert refreshd >/dev/null && apt-get purge -y -q refreshd >/root/apt-purge.log 2>&1 || { cat /root/apt-purge.log; exit 1; }")
		if out := c.must(30*time.Second, leftovers+"\nls /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked 2>/dev/null | grep refreshd || true\ndpkg-query -W refreshd 2>/dev/null || true"); strings.TrimSpace(out) != "" {
			t.Errorf("apt purge left behind:\n%s", out)
		}
		// Debian leaves a package's system user: files it owns may remain elsewhere.
		c.must(10*time.Second, "id refreshd")
	})
	t.Run("lintian: no errors", func(t *testing.T) {
		err := lint.Wait()
		// Exit 2 is "tags of error severity" (--fail-on error, listed below); any other
		// failure is lintian not running.
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
			t.Fatalf("lintian did not run: %v\n%s", err, &lintian)
		}
		for _, line := range strings.Split(lintian.String(), "\n") {
			if strings.HasPrefix(line, "E: ") {
				t.Errorf("lintian: %s", line)
			}
		}
		t.Logf("lintian:\n%s", &lintian)
	})
	phase("whole test", began)
}
