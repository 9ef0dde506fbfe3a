package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestHostileRefThroughSocket is issue 20's attack as a member of the socket group makes
// it: a plan whose ref param has no pattern (the README's shape), and `refreshd run P
// --param ref=...` with a value git would read as --upload-pack (a command run as the
// daemon's user) or as a refspec writing a local ref. Both are refused at the trigger,
// naming the param and the field, with no run started and nothing run; an ordinary ref still
// checks out.
func TestHostileRefThroughSocket(t *testing.T) {
	t.Parallel()
	testkit.Need(t, "git")
	e := newEnv(t)
	bare := filepath.Join(e.dir, "upstream.git")
	testkit.Git(t, e.dir, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	work := filepath.Join(e.dir, "work")
	testkit.Git(t, e.dir, "clone", "--quiet", bare, work)
	os.WriteFile(filepath.Join(work, "f"), []byte("x\n"), 0o644)
	testkit.Git(t, work, "add", "f")
	testkit.Git(t, work, "commit", "--quiet", "-m", "x")
	testkit.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	checkout := filepath.Join(e.dir, "checkout")
	e.writePlan("p", fmt.Sprintf(`plan: p
workdir: %s
params:
  ref: { default: main }
steps:
  - id: checkout
    checkout: { repo: %s, ref: "{{ .params.ref }}" }
`, checkout, bare))
	e.start([]string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"})
	marker := filepath.Join(e.dir, "pwned")
	for _, tt := range []struct{ ref, want string }{
		{"--upload-pack=id > " + marker + "; git-upload-pack", `(from param ref): it starts with "-", so the program would read it as an option`},
		{":refs/heads/evil", `(from param ref): it holds ":", which makes it a refspec writing a local ref`},
	} {
		out, stderr, code := e.cli("run", "p", "--param", "ref="+tt.ref)
		if code != 2 || !strings.Contains(stderr, "p.yaml:7:") || !strings.Contains(stderr, `checkout ref renders to "`) || !strings.Contains(stderr, tt.want) {
			t.Errorf("run p --param ref=%q: exit %d, want 2 (invalid input, the exit codes of docs/operations.md) naming the param and the field\n%s%s", tt.ref, code, out, stderr)
		}
	}
	if runs := e.runs("p"); len(runs) != 0 {
		t.Errorf("%d runs recorded, want none started", len(runs))
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: the ref ran a command", marker)
	}
	out, stderr, code := e.cli("run", "--wait", "p", "--param", "ref=main")
	if code != 0 {
		t.Fatalf("run p --param ref=main: exit %d\n%s%s", code, out, stderr)
	}
	if refs := testkit.Git(t, checkout, "for-each-ref", "--format=%(refname)"); refs != "refs/refreshd/source" {
		t.Errorf("refs of the checkout: %q, want only refs/refreshd/source (no refs/heads/evil)", refs)
	}
}
