package plan

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestAirflowCommandsOnTreeShapes runs the shipped Airflow plan's own commands, exactly as
// the plan expands them, on files shaped like those of an Airflow checkout (written here
// after the shapes in breeze's sources): python-versions on global_constants.py, its output
// through the step's outputs: rules, and the check-constraints gate on constraint files. A
// file that is not what the command expects fails the step (exit non-zero), never a run
// that reads a wrong list or publishes a cut file.
func TestAirflowCommandsOnTreeShapes(t *testing.T) {
	testkit.Need(t, "python3", "awk")
	p, g := expandShipped(t, "../plans/airflow.yaml")
	argvOf := func(id string) []string {
		t.Helper()
		for _, in := range g.Instances {
			if in.ID == id {
				return in.Action.(*RunAction).Argv
			}
		}
		t.Fatalf("no instance %s", id)
		return nil
	}
	run := func(dir string, argv []string) (string, int) {
		t.Helper()
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir = dir
		out, err := c.Output()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return string(out), 0
	}
	write := func(dir, rel, content string) {
		t.Helper()
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var versions *Step
	for _, s := range p.Steps {
		if s.ID == "python-versions" {
			versions = s
		}
	}
	const constants = "dev/breeze/src/airflow_breeze/global_constants.py"
	const around = `from enum import Enum

class Architecture(Enum):
    X86_64 = "linux/amd64"
    ARM = "linux/arm64"

ANSWER = ""
APACHE_AIRFLOW_GITHUB_REPOSITORY = "apache/airflow"
PROVIDERS: list[str] = ["amazon", "google"]

# Checked before putting in build cache
%s
DEFAULT_PYTHON_MAJOR_MINOR_VERSION = ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS[0]
ALLOWED_ARCHITECTURES = [Architecture.X86_64, Architecture.ARM]
`
	for _, tt := range []struct {
		name, line string
		want       []string // nil: the step fails
	}{
		{"a literal list", `ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]`, []string{"3.10", "3.11", "3.12", "3.13", "3.14"}},
		{"single quotes, one version", `ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS = ['3.12']`, []string{"3.12"}},
		{"annotated", `ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS: list[str] = ["3.10", "3.11", "3.12", "3.13", "3.14"]`, []string{"3.10", "3.11", "3.12", "3.13", "3.14"}},
		{"annotated, no value", "ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS: list[str]", nil},
		{"annotated, computed", `ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS: list[str] = sorted(["3.11", "3.10"])`, nil},
		{"renamed", `SUPPORTED_PYTHON_VERSIONS = ["3.10", "3.11"]`, nil},
		{"computed", `ALLOWED_PYTHON_MAJOR_MINOR_VERSIONS = sorted(["3.11", "3.10"])`, nil},
	} {
		t.Run("python-versions/"+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir, constants, strings.Replace(around, "%s", tt.line, 1))
			out, code := run(dir, argvOf("python-versions"))
			if tt.want == nil {
				if code == 0 {
					t.Errorf("exit 0 with %q; want the step to fail", out)
				}
				return
			}
			vals, err := ParseOutputs(versions.Outputs, []byte(out))
			if code != 0 || err != nil || !slices.Equal(vals["python"].List, tt.want) {
				t.Errorf("exit %d, %q: %v, %v; want %q", code, out, vals, err, tt.want)
			}
		})
	}

	const header = "#\n# This constraints file was automatically generated on 2026-12-01T02:04:05.123456Z\n# via \"eager-upgrade\" mechanism of PIP. For the \"main\" branch of Airflow.\n#\n"
	for _, tt := range []struct {
		name, content string
		pass          bool
	}{
		{"whole", header + "aiofiles==24.1.0\napache-airflow-providers-amazon==9.2.0\nzope.interface==7.2\n", true},
		{"empty", "", false},
		{"cut after the header", header, false},
		{"pins without breeze's header", "aiofiles==24.1.0\n", false},
		{"an error message", "ERROR: ResolutionImpossible\n", false},
	} {
		t.Run("check-constraints/"+tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir, "files/constraints-3.12/constraints-source-providers-3.12.txt", tt.content)
			_, code := run(dir, argvOf("check-constraints[python=3.12,mode=constraints-source-providers]"))
			if (code == 0) != tt.pass {
				t.Errorf("gate exit %d; want pass %v", code, tt.pass)
			}
		})
	}
}

// TestAirflowPreflight runs the shipped plan's preflight command, as the plan expands it,
// on boxes that lack one prerequisite each (docker and uv stand-ins on PATH, a docker config
// with or without the registry's login): each fails the step naming what is missing, a
// complete box passes.
func TestAirflowPreflight(t *testing.T) {
	testkit.Need(t, "python3")
	_, g := expandShipped(t, "../plans/airflow.yaml")
	var argv []string
	for _, in := range g.Instances {
		if in.ID == "preflight" {
			argv = slices.Clone(in.Action.(*RunAction).Argv)
		}
	}
	if len(argv) != 5 || argv[3] != "ghcr.io" {
		t.Fatalf("preflight argv %q; want python3 -c SCRIPT ghcr.io MIN_FREE_GB", argv)
	}
	// The interpreter itself, so PATH below can leave everything else out.
	exe, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	argv[0] = strings.TrimSpace(string(exe))
	const loggedIn = `{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}`
	for _, tt := range []struct {
		name    string
		compose bool   // docker compose version succeeds
		uv      bool   // uv on PATH
		config  string // DOCKER_CONFIG/config.json
		minGB   string
		want    string // "" passes; else stderr's first line
	}{
		{"complete box", true, true, loggedIn, "0.001", ""},
		{"no compose plugin", false, true, loggedIn, "0.001", "error: preflight: missing docker compose\n"},
		{"no uv", true, false, loggedIn, "0.001", "error: preflight: missing uv\n"},
		{"no login", true, true, `{"auths": {"docker.io": {"auth": "eA=="}}}`, "0.001", "error: preflight: missing docker login ghcr.io\n"},
		{"no docker config", true, true, "", "0.001", "error: preflight: missing docker login ghcr.io\n"},
		{"disk full", true, true, loggedIn, "1e9", "error: preflight: missing free disk\n"},
		{"all at once", false, false, "", "1e9", "error: preflight: missing docker compose, uv, docker login ghcr.io, free disk\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin, config := t.TempDir(), t.TempDir()
			composeExit := "1"
			if tt.compose {
				composeExit = "0"
			}
			write := func(path, content string, mode os.FileMode) {
				t.Helper()
				if err := os.WriteFile(path, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(bin, "docker"), "#!/bin/sh\ncase \"$1 $2\" in\n\"compose version\") exit "+composeExit+";;\n\"buildx version\") exit 0;;\nesac\nexit 1\n", 0o755)
			if tt.uv {
				write(filepath.Join(bin, "uv"), "#!/bin/sh\nexit 0\n", 0o755)
			}
			if tt.config != "" {
				write(filepath.Join(config, "config.json"), tt.config, 0o600)
			}
			args := slices.Clone(argv)
			args[4] = tt.minGB
			c := exec.Command(args[0], args[1:]...)
			c.Dir = t.TempDir()
			c.Env = []string{"PATH=" + bin, "DOCKER_CONFIG=" + config, "HOME=" + config}
			var stderr strings.Builder
			c.Stderr = &stderr
			err := c.Run()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("preflight failed on a complete box: %v: %s", err, stderr.String())
				}
				return
			}
			if err == nil || !strings.HasPrefix(stderr.String(), tt.want) {
				t.Errorf("preflight: %v, stderr %q; want a failure starting %q", err, stderr.String(), tt.want)
			}
		})
	}
}
