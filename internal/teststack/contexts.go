package teststack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ScratchContext writes a build context whose Dockerfile is FROM scratch plus COPY of the
// given files (name -> content). It builds for any platform on any node without a network.
func ScratchContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	df := "FROM scratch\n"
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatalf("write context file %s: %v", name, err)
		}
		df += "COPY " + name + " /" + name + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatalf("write Dockerfile: %v", err)
	}
	return dir
}

// PushCache exports a new BuildKit registry cache to ref from node, as another CI would:
// buildctl, never refreshd, building a context with content never built before, so the
// cache manifest's digest changes at every call.
func (b *Buildkitd) PushCache(t testing.TB, ref string) {
	t.Helper()
	dir := ScratchContext(t, map[string]string{"stamp": fmt.Sprintf("%s %d", ref, time.Now().UnixNano())})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "buildctl", "--addr", b.Endpoint, "build", "--frontend", "dockerfile.v0",
		"--local", "context="+dir, "--local", "dockerfile="+dir, "--opt", "platform=linux/amd64",
		"--export-cache", "type=registry,ref="+ref+",mode=max")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("outside push to %s: %v\n%s", ref, err, out)
	}
}
