package airflow

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestBreezeStandIn checks the breeze stand-in's own behaviour where the plan relies on
// breeze refusing: no answer unattended, an option breeze does not have, no compose
// plugin. Nothing here builds (each case stops before breeze would).
func TestBreezeStandIn(t *testing.T) {
	testkit.Need(t, "python3", "docker")
	root := t.TempDir()
	copyTree(t, "tree", root)
	writeJSON(t, filepath.Join(root, "dev", "breeze", "standin.json"), map[string]any{
		"registry": "127.0.0.1:9", "github_api": "http://127.0.0.1:9", "engine_builder": "engine", "base_image": "x",
	})
	withCompose := t.TempDir()
	mkdir(t, filepath.Join(withCompose, "cli-plugins"))
	copyFile(t, "testdata/bin/docker-compose", filepath.Join(withCompose, "cli-plugins", "docker-compose"), 0o755)
	for _, tt := range []struct {
		name    string
		args    []string
		env     []string
		compose bool
		code    int
		want    string
	}{
		{"no answer, unattended", []string{"ci-image", "build", "--python", "3.11"}, nil, true, 1, "Set ANSWER=yes or --answer yes"},
		{"ANSWER=no", []string{"ci-image", "build", "--python", "3.11"}, []string{"ANSWER=no"}, true, 1, "Set ANSWER=yes"},
		{"a bad ANSWER", []string{"ci-image", "build"}, []string{"ANSWER=maybe"}, true, 2, "Invalid value for '--answer': 'maybe'"},
		{"an option breeze lacks", []string{"ci-image", "build", "--upgrade"}, nil, true, 2, "No such option: --upgrade"},
		{"a Python the tree does not allow", []string{"ci-image", "build", "--python-versions", "3.11 3.9"}, nil, true, 2, "'3.9' is not one of"},
		{"a platform breeze does not allow", []string{"ci-image", "build", "--platform", "linux/arm64,linux/amd64"}, nil, true, 2, "Invalid value for '--platform'"},
		{"no compose plugin", []string{"ci-image", "build", "--python", "3.11"}, []string{"ANSWER=yes"}, false, 1, "Unknown docker-compose version"},
		{"generation without an answer", []string{"release-management", "generate-constraints", "--airflow-constraints-mode", "constraints-no-providers"}, nil, true, 1, "Set ANSWER=yes"},
		{"a command it does not implement", []string{"shell"}, nil, true, 2, "No such command: shell"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			config := t.TempDir()
			if tt.compose {
				config = withCompose
			}
			cmd := exec.Command("python3", append([]string{"-c", "import sys; from airflow_breeze.breeze import main; sys.exit(main())"}, tt.args...)...)
			cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
				return strings.HasPrefix(kv, "ANSWER=") || strings.HasPrefix(kv, "GITHUB_TOKEN=") || strings.HasPrefix(kv, "DOCKER_")
			}),
				"PYTHONPATH="+filepath.Join(root, "dev", "breeze", "src"), "DOCKER_CONFIG="+config)
			cmd.Env = append(cmd.Env, tt.env...)
			cmd.Stdin = nil // /dev/null: unattended
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Errorf("breeze %s: exit %d, want %d with %q:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out)
			}
		})
	}
}
