package executor

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// dockerConfigPlanYAML provisions a remote builder that does not exist yet, builds and
// verifies one cache, and has a run step (breeze's place) print the DOCKER_CONFIG it got.
const dockerConfigPlanYAML = `plan: dockercfg
workdir: @WORK@
@ENV@
builders:
  - name: dcfg
    driver: remote
    emulation: forbid
    nodes:
      - { name: dcfg0, endpoint: "@EP0@", platform: linux/amd64 }
steps:
  - id: refresh-cache
    buildx_cache:
      builder: dcfg
      context: "."
      build_args: { PYTHON: "3.12" }
      platforms: [linux/amd64]
      ref: "@REGISTRY@/dockercfg/python3.12"
  - id: verify-cache
    needs: [refresh-cache]
    verify_cache:
      ref: "@REGISTRY@/dockercfg/python3.12:cache-linux-amd64"
  - id: breeze
    needs: [verify-cache]
    run: [sh, -c, 'printf %s "$DOCKER_CONFIG" > "@OUT@"']
`

// TestEngineOneDockerConfig runs a plan with a builder that does not exist yet under an
// engine whose Tools name no docker config, as cmd/refreshd makes it: the builder must be
// created in the DOCKER_CONFIG of the process (or the plan's env), where buildx ls and the
// registry client look, never in $HOME/.docker; run steps get the same directory.
func TestEngineOneDockerConfig(t *testing.T) {
	s := newCacheStack(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, tc := range []struct {
		name    string
		process string // DOCKER_CONFIG of refreshd
		planEnv string // DOCKER_CONFIG in the plan's env; "" for none
	}{
		{name: "process", process: filepath.Join(t.TempDir(), "docker")},
		{name: "plan env wins", process: filepath.Join(t.TempDir(), "docker"), planEnv: filepath.Join(t.TempDir(), "plan-docker")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_CONFIG", tc.process)
			store, err := history.Open(filepath.Join(t.TempDir(), "history.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			tools := &Tools{PlainHTTPRegistries: s.tools.PlainHTTPRegistries, NodeWait: s.tools.NodeWait,
				RegistryRetryWaitMin: s.tools.RegistryRetryWaitMin}
			e, err := New(Config{StateDir: t.TempDir(), Store: store, Tools: tools, KillGrace: 2 * time.Second,
				Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				t.Fatal(err)
			}
			want, env := tc.process, ""
			if tc.planEnv != "" {
				want, env = tc.planEnv, "env: { DOCKER_CONFIG: "+tc.planEnv+" }"
			}
			out := filepath.Join(t.TempDir(), "breeze-docker-config")
			yaml := strings.NewReplacer("@WORK@", s.work, "@ENV@", env, "@EP0@", s.nodes[0].Endpoint,
				"@REGISTRY@", s.reg.Host, "@OUT@", out).Replace(dockerConfigPlanYAML)
			path := filepath.Join(t.TempDir(), "plan.yaml")
			if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := plan.LoadFile(path)
			if err != nil {
				t.Fatalf("load plan: %v", err)
			}
			g, err := plan.Expand(p)
			if err != nil {
				t.Fatalf("expand plan: %v", err)
			}
			r, err := e.Run(t.Context(), g, RunSpec{Trigger: history.TriggerManual})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if r.Status != history.StatusSucceeded {
				t.Fatalf("run %s: %s", r.Status, r.Reason)
			}
			if _, err := os.Stat(filepath.Join(want, "buildx", "instances", "dcfg")); err != nil {
				t.Errorf("builder not created in %s: %v", want, err)
			}
			for _, other := range []string{filepath.Join(home, ".docker"), tc.process} {
				if other == want {
					continue
				}
				if _, err := os.Stat(filepath.Join(other, "buildx", "instances", "dcfg")); err == nil {
					t.Errorf("builder created in %s, want only in %s", other, want)
				}
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("run step output: %v", err)
			}
			if string(got) != want {
				t.Errorf("run step DOCKER_CONFIG %q, want %q", got, want)
			}
		})
	}
}

// TestForDockerConfigKeepsEverySetting: a plan's own DOCKER_CONFIG changes only that; a
// Tools field added later and not copied by forDockerConfig would silently fall back to its
// default for such plans.
func TestForDockerConfigKeepsEverySetting(t *testing.T) {
	base := &Tools{}
	v := reflect.ValueOf(base).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("set-" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Struct:
			// buildx.WaitPolicy: set its first field.
			f.Field(0).SetInt(int64(i + 1))
		default:
			t.Fatalf("Tools.%s: kind %s not covered by this test; extend it", v.Type().Field(i).Name, f.Kind())
		}
	}
	got := base.forDockerConfig("/elsewhere")
	if got.DockerConfig != "/elsewhere" {
		t.Errorf("DockerConfig %q, want /elsewhere", got.DockerConfig)
	}
	gv := reflect.ValueOf(got).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if !v.Type().Field(i).IsExported() || name == "DockerConfig" {
			continue
		}
		if !reflect.DeepEqual(gv.Field(i).Interface(), v.Field(i).Interface()) {
			t.Errorf("forDockerConfig dropped Tools.%s: %v, want %v", name, gv.Field(i).Interface(), v.Field(i).Interface())
		}
	}
	if base.forDockerConfig(base.DockerConfig) != base || base.forDockerConfig("") != base {
		t.Error("forDockerConfig of the same or no directory should be the Tools themselves")
	}
}
