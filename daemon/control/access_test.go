package control

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// The client side of TestSocketRefusesOtherUsers: this test binary, re-executed as another
// user, prints what the client says.
func TestMain(m *testing.M) {
	if sock := os.Getenv("REFRESHD_TEST_CLIENT_SOCKET"); sock != "" {
		_, err := NewClient(sock).Status(context.Background())
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type emptyService struct{ Service }

func (emptyService) Status(context.Context) (*Status, error) { return &Status{Version: "t"}, nil }

func TestSocketRefusesOtherUsers(t *testing.T) {
	u := testkit.OtherUser(t)
	// A directory the other user can traverse, so only the socket's own mode decides.
	dir, err := os.MkdirTemp("", "refreshd-sock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "refreshd.sock")
	l, err := Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(emptyService{}, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	go srv.Serve(l)
	defer srv.Close()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(asOther bool) (string, error) {
		cmd := exec.Command(bin)
		if asOther {
			cmd = testkit.CommandAs(u, bin)
		}
		cmd.Env = append(os.Environ(), "REFRESHD_TEST_CLIENT_SOCKET="+sock)
		out, err := cmd.Output()
		return string(out), err
	}
	if out, err := run(false); err != nil {
		t.Fatalf("root client: %v %s", err, out)
	}
	out, err := run(true)
	if err == nil || !strings.Contains(out, "permission denied on "+sock) {
		t.Fatalf("client as %s: err %v output %q, want permission denied on the socket", u.Username, err, out)
	}
}
