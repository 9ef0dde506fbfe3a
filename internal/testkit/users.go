package testkit

import (
	"os"
	"os/exec"
	"os/user"
	"testing"
)

// otherUser is the system user OtherUser creates once per machine: it owns nothing and
// cannot log in.
const otherUser = "refreshd-test-nobody"

// OtherUser returns a user other than the test's, for tests of what another user may do
// (connect to the control socket, say). It needs root (skipping without it) and useradd
// and setpriv (by Need's rule); the user is created on first use and kept.
func OtherUser(t testing.TB) *user.User {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to create a user and switch to it")
	}
	Need(t, "useradd", "setpriv")
	if _, err := user.Lookup(otherUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", otherUser).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v\n%s", otherUser, err, out)
		}
	}
	u, err := user.Lookup(otherUser)
	if err != nil {
		t.Fatalf("look up %s: %v", otherUser, err)
	}
	return u
}

// CommandAs is exec.Command running name as user u (setpriv; no supplementary groups).
func CommandAs(u *user.User, name string, args ...string) *exec.Cmd {
	return exec.Command("setpriv", append([]string{"--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", name}, args...)...)
}
