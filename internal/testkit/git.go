package testkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ServeGit serves the bare repository bare over git's real smart HTTP protocol (git
// http-backend behind net/http/cgi) on 127.0.0.1, fetch and push, requiring Basic
// authentication whose password is token. It returns the repository's URL; the server
// stops when the test ends.
func ServeGit(t testing.TB, bare, token string) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	h := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"), Env: []string{
		"GIT_PROJECT_ROOT=" + filepath.Dir(bare), "GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.receivepack", "GIT_CONFIG_VALUE_0=true",
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(bare)
}

// ServeGitDaemon serves the bare repository bare over git's own protocol (git daemon, push
// enabled: --enable=receive-pack) on 127.0.0.1 and returns its git:// URL. The daemon stops
// when the test ends; a receive-pack it forked for a push runs on to its end, as on a real
// server.
func ServeGitDaemon(t testing.TB, bare string) string {
	t.Helper()
	port := FreePort(t)
	base := filepath.Dir(bare)
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--base-path="+base, "--export-all", "--enable=receive-pack", "--informative-errors", base)
	cmd.Env = append(os.Environ(), GitEnv()...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("git daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitFor(t, "git daemon to listen on "+addr, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "git://" + addr + "/" + filepath.Base(bare)
}

// GitEnv isolates a test's own git (its bare remotes, the other clones it pushes from) from
// the user's and the system's configuration, with a fixed identity for its commits.
func GitEnv() []string {
	return []string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=other", "GIT_AUTHOR_EMAIL=other@example.com",
		"GIT_COMMITTER_NAME=other", "GIT_COMMITTER_EMAIL=other@example.com"}
}

// GitCmd is git with args in dir ("" for the current directory) with GitEnv, bounded by
// ctx: for a test that needs git's exit status, or more environment (commit dates).
func GitCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), GitEnv()...)
	return cmd
}

// Git runs git with args in dir ("" for the current directory) with GitEnv, for at most 30 s,
// and returns its output trimmed; a failing git fails the test with its output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := GitCmd(ctx, dir, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}
