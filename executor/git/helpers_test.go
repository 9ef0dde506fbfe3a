package git

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const branch = "constraints-main"

// constraints renders a constraints file with a generation header.
func constraints(stamp string, pins ...string) string {
	return "#\n# This constraints file was automatically generated on " + stamp + "\n# via refreshd tests.\n#\n" +
		strings.Join(pins, "\n") + "\n"
}

var seedPins = []string{"apache-beam==2.50.0", "boto3==1.28.0", "celery==5.3.1", "requests==2.31.0"}

// fixture is a bare remote seeded with one constraints commit, a workdir with generated
// files laid out like Airflow's, and a state directory.
type fixture struct {
	remote, workdir, state string
	seed                   string // the remote head after seeding
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testkit.Need(t, "git")
	f := &fixture{remote: filepath.Join(t.TempDir(), "constraints.git"), workdir: t.TempDir(), state: t.TempDir()}
	testkit.Git(t, "", "init", "--quiet", "--bare", f.remote)
	// Record every update of the branch so tests can prove nothing was forced.
	testkit.Git(t, f.remote, "config", "core.logAllRefUpdates", "always")
	seed := t.TempDir()
	testkit.Git(t, seed, "init", "--quiet", "-b", branch)
	writeFile(t, filepath.Join(seed, "constraints-3.11.txt"), constraints("2024-01-01T00:00:00Z", seedPins...))
	writeFile(t, filepath.Join(seed, "constraints-no-providers-3.11.txt"), constraints("2024-01-01T00:00:00Z", "requests==2.31.0"))
	writeFile(t, filepath.Join(seed, "README.md"), "not generated: must survive publishes\n")
	testkit.Git(t, seed, "add", ".")
	testkit.Git(t, seed, "commit", "--quiet", "-m", "seed")
	testkit.Git(t, seed, "push", "--quiet", f.remote, "HEAD:refs/heads/"+branch)
	f.seed = f.head(t)
	// Files that must never be published sit beside the constraints, as breeze leaves them.
	writeFile(t, filepath.Join(f.workdir, "files/constraints-3.11/original-constraints-3.11.txt"), "x==1\n")
	writeFile(t, filepath.Join(f.workdir, "files/constraints-3.11/diff-constraints-3.11.md"), "# diff\n")
	return f
}

// generate writes the run's constraints files into the workdir.
func (f *fixture) generate(t *testing.T, stamp string, pins []string, noProviders []string) {
	t.Helper()
	writeFile(t, filepath.Join(f.workdir, "files/constraints-3.11/constraints-3.11.txt"), constraints(stamp, pins...))
	writeFile(t, filepath.Join(f.workdir, "files/constraints-3.11/constraints-no-providers-3.11.txt"), constraints(stamp, noProviders...))
}

func (f *fixture) head(t *testing.T) string {
	return testkit.Git(t, f.remote, "rev-parse", "refs/heads/"+branch)
}

func (f *fixture) options() Options {
	return Options{
		Repo: f.remote, Branch: branch, Workdir: f.workdir,
		Files:      []string{"files/constraints-*/constraints*.txt"},
		AuthorName: "refreshd-test", AuthorEmail: "refreshd@example.com",
		Ignore:      regexp.MustCompile(`^#`),
		Message:     func(summary string) string { return "Update constraints: " + summary },
		MaxAttempts: 5,
		StateDir:    f.state, Env: testkit.GitEnv(),
		FetchAttempts: 2, FetchBackoff: 10 * time.Millisecond, LockWait: 20 * time.Millisecond,
	}
}

// assertNoForce checks the remote's reflog of the branch: every head it ever had is an
// ancestor of the next one, so no update rewrote history.
func assertNoForce(t *testing.T, remote string) {
	t.Helper()
	heads := strings.Fields(testkit.Git(t, remote, "reflog", "show", "--format=%H", "refs/heads/"+branch))
	for i := 0; i+1 < len(heads); i++ { // newest first
		if err := testkit.GitCmd(t.Context(), remote, "merge-base", "--is-ancestor", heads[i+1], heads[i]).Run(); err != nil {
			t.Errorf("remote history was rewritten: %s is not an ancestor of %s", heads[i+1], heads[i])
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
