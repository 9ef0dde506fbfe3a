package executor

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// TestStepSeesOnlyItsSecrets dumps each step's whole environment with env(1): a run step
// holds exactly the secrets it names, a step naming none holds none, and no value of a
// secret reaches a step that did not name it under any variable.
func TestStepSeesOnlyItsSecrets(t *testing.T) {
	dir := t.TempDir()
	secretValue := map[string]string{"GITHUB_TOKEN": "ghp_value-of-github-token", "SLACK_URL": "https://hooks.example/value-of-slack"}
	secrets := map[string]plan.Secret{}
	for name, v := range secretValue {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		secrets[name] = plan.Secret{File: f}
	}
	p := &plan.Plan{Name: "test", Secrets: secrets, Env: map[string]string{"CI": "true"}}
	e := newEngineT(t, time.Second)
	steps := map[string][]string{"none": nil, "github": {"GITHUB_TOKEN"}, "both": {"GITHUB_TOKEN", "SLACK_URL"}}
	var insts []*plan.Instance
	for _, id := range slices.Sorted(maps.Keys(steps)) {
		inst := step(id, "env")
		inst.Step.Secrets = steps[id]
		inst.Env = map[string]string{"CI": "true"}
		insts = append(insts, inst)
	}
	r := e.run(t, context.Background(), graph(p, insts...))
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	for id, named := range steps {
		// The log is redacted: read what the step saw from the names it printed.
		data, err := os.ReadFile(stepOf(t, r, id).Attempts[0].Log)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			name, value, _ := strings.Cut(line, "=")
			if _, isSecret := secretValue[name]; isSecret {
				if value != "***" {
					t.Errorf("step %s: %s is not redacted in its log: %q", id, name, value)
				}
				got = append(got, name)
			} else if value == "***" {
				t.Errorf("step %s: %s holds a secret value it did not name", id, name)
			}
		}
		slices.Sort(got)
		want := slices.Clone(named)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("step %s sees secrets %q, want exactly %q", id, got, want)
		}
	}
}

// TestBuiltinProcessesGetNoStepSecrets: processes of built-in actions (no step secrets:)
// get no secret in their environment; they get credentials through their own keys only.
func TestBuiltinProcessesGetNoStepSecrets(t *testing.T) {
	inst := &plan.Instance{ID: "provision[b]", Action: &plan.ProvisionAction{}}
	env := stepEnv(inst, map[string]string{"GITHUB_TOKEN": "v"}, "", []string{"REFRESHD_GIT_TOKEN=from-key"})
	for _, kv := range env {
		if strings.HasPrefix(kv, "GITHUB_TOKEN=") {
			t.Errorf("built-in action's environment holds %s", kv)
		}
	}
	if !slices.Contains(env, "REFRESHD_GIT_TOKEN=from-key") {
		t.Errorf("extra env from the action's own key missing: %q", env)
	}
}
