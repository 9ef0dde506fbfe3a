package sample

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// script runs one of scripts/ under busybox sh in dir, with env added to the environment.
func script(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bb := testkit.Need(t, "busybox")[0] // the scripts are written for the busybox sh/awk of the sample's image
	abs, aerr := filepath.Abs(filepath.Join("scripts", name))
	if aerr != nil {
		t.Fatal(aerr)
	}
	cmd := exec.Command(bb, append([]string{"sh", abs}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestResolveProject pins what the shipped index and pins resolve to, per Python version
// and upgrade switch: the versions the demo's first refresh publishes.
func TestResolveProject(t *testing.T) {
	here, _ := os.Getwd()
	for _, py := range []string{"3.11", "3.12"} {
		for _, upgrade := range []string{"false", "true"} {
			t.Run(py+"-upgrade-"+upgrade, func(t *testing.T) {
				out, stderr, err := script(t, here, nil, "resolve.sh", "deps.txt", "index/packages.txt", py, upgrade)
				if err != nil {
					t.Fatalf("resolve.sh: %v\n%s", err, stderr)
				}
				testkit.Golden(t, filepath.Join("testdata", "resolve", py+"-upgrade-"+upgrade+".txt"), out)
			})
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name          string
		deps, index   string
		python        string
		upgrade       string
		want, wantErr string
	}{
		{
			name:   "pinned",
			deps:   "a 1.9 core\nb 2.0 provider\n",
			index:  "a 1.9\na 1.10\nb 2.0\nb 2.1\n",
			python: "3.11", upgrade: "false",
			want: "a==1.9 core\nb==2.0 provider\n",
		},
		{
			name:   "upgrade compares versions numerically",
			deps:   "a 1.9 core\n",
			index:  "a 1.10\na 1.9\na 1.2.7\n",
			python: "3.11", upgrade: "true",
			want: "a==1.10 core\n",
		},
		{
			name:   "upgrade skips releases that need a newer python",
			deps:   "a 1.0 core\n",
			index:  "a 1.0\na 2.0 >=3.12\n",
			python: "3.11", upgrade: "true",
			want: "a==1.0 core\n",
		},
		{
			name:   "requires-python compares numerically",
			deps:   "a 1.0 core\n",
			index:  "a 1.0\na 2.0 >=3.9\n",
			python: "3.10", upgrade: "true",
			want: "a==2.0 core\n",
		},
		{
			name:   "comments and blank lines",
			deps:   "# pins\n\na 1.0 core # the one\n",
			index:  "# the index\na 1.0\n",
			python: "3.11", upgrade: "false",
			want: "a==1.0 core\n",
		},
		{
			name:   "pin missing from the index",
			deps:   "a 1.0 core\nb 3.0 core\n",
			index:  "a 1.0\nb 2.0\n",
			python: "3.11", upgrade: "false",
			wantErr: "deps.txt:2: b 3.0 is not in index.txt for Python 3.11",
		},
		{
			name:   "pin needs a newer python",
			deps:   "a 2.0 core\n",
			index:  "a 2.0 >=3.12\n",
			python: "3.11", upgrade: "false",
			wantErr: "deps.txt:1: a 2.0 is not in index.txt for Python 3.11",
		},
		{
			name:   "bad group",
			deps:   "a 1.0 extra\n",
			index:  "a 1.0\n",
			python: "3.11", upgrade: "false",
			wantErr: `deps.txt:1: group "extra" of a is not core, provider-dep or provider`,
		},
		{
			name:   "deps line without a group",
			deps:   "a 1.0 core\na 1.0\n",
			index:  "a 1.0\n",
			python: "3.11", upgrade: "false",
			wantErr: `deps.txt:2: want "name pinned-version group", got 2 fields`,
		},
		{
			name:   "bad version in the index",
			deps:   "a 1.0 core\n",
			index:  "a 1.0\na 1.1rc1\n",
			python: "3.11", upgrade: "false",
			wantErr: `index.txt:2: bad version "1.1rc1" for a`,
		},
		{
			name:   "bad requires-python",
			deps:   "a 1.0 core\n",
			index:  "a 1.0 <3.12\n",
			python: "3.11", upgrade: "false",
			wantErr: `index.txt:1: bad requires-python "<3.12" (want >=X.Y)`,
		},
		{
			name:   "bad upgrade switch",
			deps:   "a 1.0 core\n",
			index:  "a 1.0\n",
			python: "3.11", upgrade: "yes",
			wantErr: `UPGRADE must be true or false, not "yes"`,
		},
		{
			name:   "bad python version",
			deps:   "a 1.0 core\n",
			index:  "a 1.0\n",
			python: "three", upgrade: "false",
			wantErr: `bad PYTHON_VERSION "three"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"deps.txt": tt.deps, "index.txt": tt.index})
			out, stderr, err := script(t, dir, nil, "resolve.sh", "deps.txt", "index.txt", tt.python, tt.upgrade)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("resolve.sh succeeded with %q, want error %q", out, tt.wantErr)
				}
				if !strings.Contains(stderr, tt.wantErr) {
					t.Fatalf("stderr %q does not contain %q", stderr, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolve.sh: %v\n%s", err, stderr)
			}
			if out != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
}

// TestConstraintsProject generates every mode of the shipped project at a fixed time and
// compares all files, published or not, with the golden ones.
func TestConstraintsProject(t *testing.T) {
	here, _ := os.Getwd()
	for _, py := range []string{"3.11", "3.12"} {
		t.Run(py, func(t *testing.T) {
			work := t.TempDir()
			for _, r := range []struct{ file, upgrade string }{{"resolved.txt", "true"}, {"original.txt", "false"}} {
				out, stderr, err := script(t, here, nil, "resolve.sh", "deps.txt", "index/packages.txt", py, r.upgrade)
				if err != nil {
					t.Fatalf("resolve.sh: %v\n%s", err, stderr)
				}
				if err := os.WriteFile(filepath.Join(work, r.file), []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, mode := range []string{"constraints", "constraints-source-providers", "constraints-no-providers"} {
				_, stderr, err := script(t, work, []string{"GENERATED_AT=2025-01-02T03:04:05Z"},
					"constraints.sh", mode, py, "resolved.txt", "original.txt", "out")
				if err != nil {
					t.Fatalf("constraints.sh %s: %v\n%s", mode, err, stderr)
				}
			}
			entries, err := os.ReadDir(filepath.Join(work, "out"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			want := []string{
				"constraints-" + py + ".txt",
				"constraints-no-providers-" + py + ".txt",
				"constraints-source-providers-" + py + ".txt",
				"diff-constraints-" + py + ".md",
				"diff-constraints-no-providers-" + py + ".md",
				"diff-constraints-source-providers-" + py + ".md",
				"original-constraints-" + py + ".txt",
				"original-constraints-no-providers-" + py + ".txt",
				"original-constraints-source-providers-" + py + ".txt",
			}
			if strings.Join(names, " ") != strings.Join(want, " ") {
				t.Fatalf("files\n%v\nwant\n%v", names, want)
			}
			for _, name := range names {
				body, err := os.ReadFile(filepath.Join(work, "out", name))
				if err != nil {
					t.Fatal(err)
				}
				testkit.Golden(t, filepath.Join("testdata", "constraints", name), string(body))
			}
		})
	}
}

func TestConstraintsBadMode(t *testing.T) {
	dir := writeFiles(t, map[string]string{"r.txt": "a==1.0 core\n"})
	_, stderr, err := script(t, dir, nil, "constraints.sh", "constraints-all", "3.11", "r.txt", "r.txt", "out")
	want := `unknown mode "constraints-all"`
	if err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("err %v, stderr %q; want an error containing %q", err, stderr, want)
	}
}
