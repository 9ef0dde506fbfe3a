package teststack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Buildkitd is a running buildkitd with the OCI worker, its own root, on a tcp port.
type Buildkitd struct {
	Name     string
	Endpoint string // tcp://127.0.0.1:PORT
	Root     string
	// OtelSocket is its own OTEL trace socket (never buildkitd's shared default).
	OtelSocket string
	proc       *process
}

// StartBuildkitd starts buildkitd on a free 127.0.0.1 port with its own root under a temp
// directory (removed at cleanup: roots grow large) and waits until `buildctl debug workers`
// answers. Registries on 127.0.0.1 are reached over plain HTTP.
func StartBuildkitd(t testing.TB, name string) *Buildkitd {
	t.Helper()
	return StartBuildkitdWith(t, name, BuildkitdOptions{})
}

// BuildkitdOptions change how StartBuildkitd starts a node.
type BuildkitdOptions struct {
	// TLS, when set, makes the node serve TLS with TLS.ServerCert/ServerKey and require
	// client certificates signed by TLS.CACert.
	TLS *TLSFiles
}

// StartBuildkitdWith is StartBuildkitd with options.
func StartBuildkitdWith(t testing.TB, name string, o BuildkitdOptions) *Buildkitd {
	t.Helper()
	dir, err := os.MkdirTemp("", "refreshd-buildkitd-"+name+"-")
	if err != nil {
		t.Fatalf("create buildkitd dir: %v", err)
	}
	b := &Buildkitd{
		Name:       name,
		Endpoint:   fmt.Sprintf("tcp://127.0.0.1:%d", testkit.FreePort(t)),
		Root:       filepath.Join(dir, "root"),
		OtelSocket: filepath.Join(dir, "otel.sock"),
	}
	// Registered before start so it runs after the process is stopped (cleanups are LIFO).
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfg := `[registry."127.0.0.1"]
  http = true
  insecure = true
[worker.oci]
  enabled = true
  gc = false
[worker.containerd]
  enabled = false
`
	cfgPath := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write buildkitd config: %v", err)
	}
	logPath := filepath.Join(dir, "buildkitd.log")
	// Every path buildkitd would otherwise take from its global defaults is its own: the
	// OTEL trace socket defaults to /run/buildkit/otel-grpc.sock, which concurrent daemons
	// (packages tested in parallel, the bench) would remove and chown under each other;
	// --addr replaces the default /run/buildkit/buildkitd.sock listener.
	argv := []string{"buildkitd", "--config", cfgPath, "--root", b.Root, "--addr", b.Endpoint,
		"--otel-socket-path", b.OtelSocket}
	var clientTLS []string
	if o.TLS != nil {
		argv = append(argv, "--tlscacert", o.TLS.CACert, "--tlscert", o.TLS.ServerCert, "--tlskey", o.TLS.ServerKey)
		clientTLS = []string{"--tlscacert", o.TLS.CACert, "--tlscert", o.TLS.ClientCert, "--tlskey", o.TLS.ClientKey}
	}
	b.proc = start(t, logPath, argv...)
	waitUntil(t, "buildkitd "+name+" on "+b.Endpoint, b.proc, logPath, 15*time.Second, func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "buildctl", append(append([]string{"--addr", b.Endpoint}, clientTLS...), "debug", "workers")...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("buildctl debug workers: %v: %s", err, out)
		}
		return nil
	})
	return b
}

// Kill stops buildkitd at once (SIGKILL), the way a crashed or unreachable node looks.
func (b *Buildkitd) Kill() { b.proc.kill() }
