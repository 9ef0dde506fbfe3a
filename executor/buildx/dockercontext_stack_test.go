package buildx_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/internal/teststack"
)

// breezeDocker runs a docker command the way a step does (breeze): with the builder's
// DOCKER_CONFIG and docker's current context, not refreshd's DOCKER_CONTEXT.
func breezeDocker(t *testing.T, config string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("docker", args...)
	env := []string{"DOCKER_CONFIG=" + config}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// breezeContext does what `breeze ci-image build --builder NAME` does to docker's
// configuration (get_and_use_docker_context): create a context of the builder's name, a copy
// of the current one (an error when it exists, which breeze ignores), and use it.
func breezeContext(t *testing.T, config, name string) {
	t.Helper()
	breezeDocker(t, config, "context", "create", name)
	if out, err := breezeDocker(t, config, "context", "use", name); err != nil {
		t.Fatalf("docker context use %s: %v: %s", name, err, out)
	}
}

// setCurrentContext points docker's current context at name, keeping the rest of config.json.
func setCurrentContext(t *testing.T, config, name string) {
	t.Helper()
	path := filepath.Join(config, "config.json")
	m := map[string]any{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
	}
	m["currentContext"] = name
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func currentContext(t *testing.T, config string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(config, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ CurrentContext string }
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c.CurrentContext
}

// TestBuilderSurvivesBreezeContext provisions and builds night after night while a step
// does what breeze does to docker's configuration between the runs: a docker context of the
// builder's name, left in use. buildx (0.13 and later) refuses to create a builder of a
// context's name and to remove a "context builder": without the context handling, the
// first create and every run after a `buildx rm` fail.
func TestBuilderSurvivesBreezeContext(t *testing.T) {
	s := newStack(t, 2)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	ctx := t.Context()
	config := s.client.DockerConfig
	spec := s.spec("airflow_cache", "linux/amd64", "linux/386")
	bctx := teststack.ScratchContext(t, map[string]string{"a.txt": "hello"})

	nights := []struct {
		name   string
		before func()
		want   []string // the changes provisioning makes
	}{
		{"breeze ran before the first provisioning", func() { breezeContext(t, config, "airflow_cache") },
			[]string{"rm-context ", "create airflow_cache0", "append airflow_cache1"}},
		{"breeze's build between the runs", func() { breezeContext(t, config, "airflow_cache") }, nil},
		{"the builder removed by hand, the context in use", func() {
			breezeContext(t, config, "airflow_cache")
			if out, err := breezeDocker(t, config, "buildx", "rm", "--keep-state", "airflow_cache"); err != nil {
				t.Fatalf("buildx rm: %v: %s", err, out)
			}
		}, []string{"rm-context ", "create airflow_cache0", "append airflow_cache1"}},
		{"another night of breeze", func() { breezeContext(t, config, "airflow_cache") }, nil},
		// docker's current context names one that is gone: every docker command that
		// follows the configuration fails ("no builder ... found" from buildx ls).
		{"the context in use deleted", func() { setCurrentContext(t, config, "deleted_by_hand") }, nil},
	}
	for _, n := range nights {
		n.before()
		changes, err := s.client.Provision(ctx, spec)
		if err != nil {
			t.Fatalf("%s: provision: %v", n.name, err)
		}
		if got := kinds(changes); !slices.Equal(got, n.want) {
			t.Fatalf("%s: changes %v, want %v", n.name, got, n.want)
		}
		if cur := currentContext(t, config); n.want != nil && cur != "" {
			t.Errorf("%s: docker's current context is %q after the context was removed, want none (default)", n.name, cur)
		}
		if _, err := s.client.WaitRunning(ctx, "airflow_cache", buildx.WaitPolicy{Attempts: 2}); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		// refreshd's own commands, with breeze's context current: the build goes to the
		// builder's node and the registry.
		md, err := s.client.Build(ctx, buildx.BuildOptions{Builder: "airflow_cache", Platform: "linux/386", Context: bctx,
			CacheRef: reg.Host + "/airflow/main/ci/python3.12:cache-linux-386", MetadataFile: filepath.Join(t.TempDir(), "md.json")})
		if err != nil {
			t.Fatalf("%s: build: %v", n.name, err)
		}
		if md.Node != "airflow_cache1" {
			t.Errorf("%s: built on %s, want airflow_cache1", n.name, md.Node)
		}
		// breeze's own build after refreshd's provisioning: its context is used again.
		breezeContext(t, config, "airflow_cache")
		if cur := currentContext(t, config); cur != "airflow_cache" {
			t.Fatalf("%s: current context %q after breeze, want airflow_cache", n.name, cur)
		}
	}

	// A context of the builder's name that reaches another engine is someone's
	// configuration: provisioning refuses, naming it, and leaves it alone.
	if out, err := breezeDocker(t, config, "buildx", "rm", "--keep-state", "airflow_cache"); err != nil {
		t.Fatalf("buildx rm: %v: %s", err, out)
	}
	breezeDocker(t, config, "context", "use", "default")
	breezeDocker(t, config, "context", "rm", "airflow_cache")
	if out, err := breezeDocker(t, config, "context", "create", "airflow_cache", "--docker", "host=tcp://127.0.0.1:9"); err != nil {
		t.Fatalf("context create: %v: %s", err, out)
	}
	_, err := s.client.Provision(ctx, spec)
	var clash *buildx.ContextClashError
	if !errors.As(err, &clash) || !strings.Contains(err.Error(), `docker context airflow_cache (endpoint "tcp://127.0.0.1:9"`) {
		t.Fatalf("provision with a foreign context: %v, want a ContextClashError naming it", err)
	}
	if out, err := breezeDocker(t, config, "context", "inspect", "airflow_cache"); err != nil {
		t.Errorf("the foreign context was removed: %v: %s", err, out)
	}
}
