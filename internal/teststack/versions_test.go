package teststack

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestStackVersions checks that the buildx plugin, buildkitd and buildctl on PATH report the
// versions scripts/install-stack.sh pins: the versions are stamped into the binaries it builds
// (unstamped, each says v0.0.0+unknown), so a report or a bug filed upstream names the real one.
func TestStackVersions(t *testing.T) {
	testkit.Need(t, "docker", "buildkitd", "buildctl")
	script, err := os.ReadFile("../../scripts/install-stack.sh")
	if err != nil {
		t.Fatal(err)
	}
	pin := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `=\$\{` + name + `:-(v[0-9][^}]*)\}$`).FindSubmatch(script)
		if m == nil {
			t.Fatalf("scripts/install-stack.sh pins no %s", name)
		}
		return string(m[1])
	}
	buildx, buildkit := pin("BUILDX_VERSION"), pin("BUILDKIT_VERSION")
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"docker", "buildx", "version"}, "github.com/docker/buildx " + buildx},
		{[]string{"buildkitd", "--version"}, "buildkitd github.com/moby/buildkit " + buildkit},
		{[]string{"buildctl", "--version"}, "buildctl github.com/moby/buildkit " + buildkit},
	} {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, tc.argv[0], tc.argv[1:]...)
			cmd.Env = Env(DockerConfig(t))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(tc.argv, " "), err, out)
			}
			// The first words: a longer version (v0.38.20) must not pass for the pin.
			got, want := strings.Fields(string(out)), strings.Fields(tc.want)
			if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
				t.Errorf("%s printed %q, want it to begin with %q (rebuild with scripts/install-stack.sh)", strings.Join(tc.argv, " "), out, tc.want)
			}
		})
	}
}
