package executor

import (
	"context"
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
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "secret TOKEN") {
					t.Errorf("err = %v, want it to name the secret and say %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || vals["TOKEN"] != tt.want {
				t.Errorf("value %q, err %v; want %q", vals["TOKEN"], err, tt.want)
			}
			got := strings.Join(warns, "\n")
			if (tt.wantWarn == "") != (got == "") || !strings.Contains(got, tt.wantWarn) {
				t.Errorf("warnings %q, want %q", got, tt.wantWarn)
			}
		})
	}
}
