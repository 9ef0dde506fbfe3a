package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/refreshd/refreshd/plan"
)

// defaultDockerConfig is the docker configuration directory docker itself would use:
// $DOCKER_CONFIG, else $HOME/.docker, made absolute. The engine fills Tools.DockerConfig
// with it so that every docker, buildx and buildctl command, every step process and the
// registry client read one directory: builder state written by `buildx create` is the state
// `buildx ls` reads, and run steps (breeze) see the credentials the verify step uses.
func defaultDockerConfig() (string, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the docker config directory: DOCKER_CONFIG is not set and %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("docker config directory %s: %w", dir, err)
	}
	return abs, nil
}

// planDockerConfig is the DOCKER_CONFIG a plan's env sets (rendered, as its steps see it),
// or "" when it sets none. A plan that sets it gets it for everything of that plan: its
// builders, builds, registry checks and skip_if, not only its run steps.
func planDockerConfig(g *plan.Graph) (string, error) {
	raw, ok := g.Plan.Env["DOCKER_CONFIG"]
	if !ok {
		return "", nil
	}
	dir := raw
	// The plan env may be a template: take it rendered from an instance that inherits it.
	for _, inst := range g.Instances {
		if inst.Step == nil { // added by expansion (provision): no env of its own
			continue
		}
		if _, own := inst.Step.Env["DOCKER_CONFIG"]; !own {
			dir = inst.Env["DOCKER_CONFIG"]
			break
		}
	}
	if strings.Contains(dir, "{{") {
		return "", fmt.Errorf("plan %s (%s): env DOCKER_CONFIG %q: every step overrides it, so its template is never rendered; set it without a template", g.Plan.Name, g.Plan.Pos, raw)
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("plan %s (%s): env DOCKER_CONFIG %q is not an absolute path", g.Plan.Name, g.Plan.Pos, dir)
	}
	return filepath.Clean(dir), nil
}

// forDockerConfig is t, or when dir differs from t's, a Tools for dir with t's programs and
// settings and its own registry client (credentials are per configuration directory).
func (t *Tools) forDockerConfig(dir string) *Tools {
	if dir == "" || dir == t.DockerConfig {
		return t
	}
	return &Tools{
		Docker:               t.Docker,
		Buildctl:             t.Buildctl,
		Git:                  t.Git,
		DockerConfig:         dir,
		DockerContext:        t.DockerContext,
		NodeWait:             t.NodeWait,
		PlainHTTPRegistries:  t.PlainHTTPRegistries,
		RegistryAttempts:     t.RegistryAttempts,
		RegistryRetryWaitMin: t.RegistryRetryWaitMin,
		RegistryRetryWaitMax: t.RegistryRetryWaitMax,
		RegistryBudget:       t.RegistryBudget,
	}
}
