package teststack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// User and Password, when set, protect the registry with htpasswd (bcrypt) Basic auth.
	User, Password string
}

// Registry is a running docker-registry (distribution) server.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// Root is the storage directory.
	Root string
	proc *process
}

// StartRegistry starts docker-registry on a free 127.0.0.1 port with a temp storage root and
// waits until /v2/ answers (200, or 401 with auth).
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	dir := t.TempDir()
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), Root: filepath.Join(dir, "storage")}
	auth := ""
	if opts.User != "" {
		out, err := exec.Command("htpasswd", "-Bbn", opts.User, opts.Password).Output()
		if err != nil {
			t.Fatalf("htpasswd -Bbn %s: %v", opts.User, err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, out, 0o600); err != nil {
			t.Fatalf("write htpasswd: %v", err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: refreshd-test\n    path: %s\n", pw)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, r.Root, r.Host, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write registry config: %v", err)
	}
	logPath := filepath.Join(dir, "registry.log")
	r.proc = start(t, logPath, "docker-registry", "serve", cfgPath)
	url := "http://" + r.Host + "/v2/"
	waitUntil(t, "docker-registry on "+r.Host, r.proc, logPath, 10*time.Second, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
	return r
}

// Stop stops the registry (it is also stopped at cleanup).
func (r *Registry) Stop() { r.proc.stop() }
