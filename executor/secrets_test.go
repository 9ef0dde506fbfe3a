package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refreshd/refreshd/plan"
)

// TestSecretFiles reads secret files of every kind a mistake or an attacker could put in
// the way: each either gives its value or fails at once with the file named, never hangs.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path    string
		want, wantErr string
		wantWarn      string
	}{
		{"regular", write("ok", "tok3n\n", 0o600), "tok3n", "", ""},
		{"crlf trimmed", write("crlf", "tok3n\r\n", 0o640), "tok3n", "", ""},
		{"world readable", write("open", "tok3n", 0o644), "tok3n", "", "readable or writable by every user (mode 0644)"},
		{"fifo", fifo, "", "not a regular file", ""},
		{"directory", dir, "", "not a regular file", ""},
		{"too large", write("big", strings.Repeat("x", maxSecretFile+1), 0o600), "", "more than a secret may hold", ""},
		{"empty", write("empty", "\n", 0o600), "", "value is empty", ""},
		{"three characters", write("short", " ab3 \n", 0o600), "", "its value is 3 characters long, too short to mask (at least 4)", ""},
		{"four characters", write("four", "ab3d\n", 0o600), "ab3d", "", ""},
		{"missing", filepath.Join(dir, "nope"), "", "no such file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			p := &plan.Plan{Secrets: map[string]plan.Secret{"TOKEN": {File: tt.path}}}
			vals, warns, err := ReadSecrets(context.Background(), p)
			if time.Since(start) > 2*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			checkSecret(t, vals["TOKEN"], warns, err, tt.want, tt.wantErr, tt.wantWarn)
		})
	}
}

// TestSecretCredentials reads systemd credentials ({credential: NAME}) from the directory
// $CREDENTIALS_DIRECTORY names, with the rules of secret files, and names what is missing:
// the variable, or the credential in it.
func TestSecretCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{"github-token": "ghp_cred\n", "empty": "", "open": "tok3n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "open"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, cred string
		want, wantErr   string
		wantWarn        string
	}{
		{"read", dir, "github-token", "ghp_cred", "", ""},
		{"world readable warns", dir, "open", "tok3n", "", "readable or writable by every user"},
		{"directory unset", "", "github-token", "", "credential github-token: $CREDENTIALS_DIRECTORY is not set", ""},
		{"directory relative", "run/credentials", "github-token", "", `$CREDENTIALS_DIRECTORY "run/credentials" is not an absolute path`, ""},
		{"name missing", dir, "gh-token", "", "credential gh-token: read " + filepath.Join(dir, "gh-token") + ": no such file or directory (the service got no credential of that name: its unit needs LoadCredential=gh-token with /etc/credstore/gh-token", ""},
		{"directory missing", filepath.Join(dir, "nope"), "github-token", "", "no such file or directory (the service got no credential", ""},
		{"empty", dir, "empty", "", "value is empty", ""},
		{"not a file", dir, "adir", "", "not a regular file", ""},
		{"path escape", dir, "../github-token", "", `credential "../github-token": not a credential name`, ""},
		{"dot dot", dir, "..", "", `credential "..": not a credential name`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", tt.dir)
			if tt.dir == "" {
				os.Unsetenv("CREDENTIALS_DIRECTORY")
			}
			p := &plan.Plan{Secrets: map[string]plan.Secret{"TOKEN": {Credential: tt.cred}}}
			vals, warns, err := ReadSecrets(context.Background(), p)
			checkSecret(t, vals["TOKEN"], warns, err, tt.want, tt.wantErr, tt.wantWarn)
		})
	}
}

// checkSecret compares what ReadSecrets gave for the secret TOKEN: its value and warnings,
// or an error that names the secret and says wantErr.
func checkSecret(t *testing.T, got string, warns []string, err error, want, wantErr, wantWarn string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "secret TOKEN") {
			t.Errorf("err = %v, want it to name the secret and say %q", err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("value %q, err %v; want %q", got, err, want)
	}
	w := strings.Join(warns, "\n")
	if (wantWarn == "") != (w == "") || !strings.Contains(w, wantWarn) {
		t.Errorf("warnings %q, want %q", w, wantWarn)
	}
}

// hungFile is a regular file whose read never answers, as on a hung network file system.
type hungFile struct {
	os.FileInfo
	closed chan struct{}
}

func (h *hungFile) Stat() (os.FileInfo, error) { return h.FileInfo, nil }
func (h *hungFile) Read([]byte) (int, error)   { <-h.closed; return 0, os.ErrClosed }
func (h *hungFile) Close() error               { return nil }

// TestReadBoundedEndsAHungRead: a read that never answers (secret or outputs file) ends at
// the timeout, or at once when the step's context ends (cancel, step or run timeout).
func TestReadBoundedEndsAHungRead(t *testing.T) {
	t.Parallel()
	small := filepath.Join(t.TempDir(), "vars.json")
	if err := os.WriteFile(small, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(small) // a small regular file's info
	if err != nil {
		t.Fatal(err)
	}
	h := &hungFile{FileInfo: fi, closed: make(chan struct{})}
	defer close(h.closed) // lets the abandoned reads end with the test
	start := time.Now()
	if _, _, err := readBounded(context.Background(), h, "out/vars.json", "outputs", 1<<20, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Errorf("hung read: %v", err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("cancelled by refreshd cancel")) })
	if _, _, err := readBounded(ctx, h, "out/vars.json", "outputs", 1<<20, time.Hour); err == nil || !strings.Contains(err.Error(), "cancelled by refreshd cancel") {
		t.Errorf("cancelled read: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
}
