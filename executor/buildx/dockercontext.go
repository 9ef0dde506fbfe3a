package buildx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A docker context named like a builder is in buildx's way. From buildx 0.13 on,
// `docker buildx create --name NAME` without --append refuses a name that any docker context
// has ("instance name NAME already exists as context builder": builder.Create), and while
// buildx's store has no builder NAME, `docker buildx ls` lists the context as a builder of
// that name with the docker driver, which `docker buildx rm` refuses ("context builder
// cannot be removed": commands/rm.go; docker/buildx#2345). A stored builder takes
// precedence over a context of its name everywhere else (storeutil.GetNodeGroup, and ls
// hides the context), so builds, ls, --append, --leave and rm of an existing builder work.
//
// Breeze makes such a context on every cache build: `breeze ci-image build --builder
// airflow_cache` runs `docker context create airflow_cache`, a copy of the current
// context's endpoint, then `docker context use airflow_cache`, and builds with
// `docker buildx build --builder airflow_cache` (get_and_use_docker_context in breeze's
// docker_command_utils.py). A builder of another name does not help: breeze creates the
// context of whatever name it is given, so the builder and the context share it by design,
// and Airflow's builder must stay airflow_cache (apache/airflow#38442).
//
// So refreshd keeps the name and removes the context only when it is in the way, that is
// before it must create the builder (first run, after a `buildx rm`, on a driver change),
// and only when removing it loses nothing: its docker endpoint is the default context's,
// so `docker --context default` reaches the same engine (breeze creates it again on its
// next build). It is removed with --force, and docker's current context goes back to
// default when the context was in use, as `docker context rm --force` does it. A context that points elsewhere is someone's
// configuration: provisioning fails, naming it and its endpoint, and leaves it alone.

// DockerContextInfo is one line of `docker context ls --format '{{json .}}'`.
type DockerContextInfo struct {
	Name           string
	DockerEndpoint string
}

// ContextLsArgv lists every docker context, one JSON object per line.
func ContextLsArgv(docker string) []string {
	return []string{docker, "context", "ls", "--format", "{{json .}}"}
}

// ContextRmArgv removes the docker context name, also when it is the current one.
func ContextRmArgv(docker, name string) []string {
	return []string{docker, "context", "rm", "--force", "--", name}
}

// Contexts reads the docker contexts of the client's DOCKER_CONFIG.
func (c *Client) Contexts(ctx context.Context) ([]DockerContextInfo, error) {
	out, err := c.query(ctx, ContextLsArgv(c.docker())...)
	if err != nil {
		return nil, fmt.Errorf("list docker contexts: %w", err)
	}
	return parseContexts(out)
}

func parseContexts(out []byte) ([]DockerContextInfo, error) {
	var list []DockerContextInfo
	if err := jsonLines(out, "docker context ls", func(ci *DockerContextInfo) { list = append(list, *ci) }); err != nil {
		return nil, err
	}
	return list, nil
}

// ContextClashError is a docker context named like a builder that must be created, which
// refreshd does not remove because it reaches another engine than the default context.
type ContextClashError struct {
	Builder         string
	Endpoint        string // the context's docker endpoint
	DefaultEndpoint string
}

func (e *ContextClashError) Error() string {
	return fmt.Sprintf("docker context %s (endpoint %q, not the default context's %q) blocks `docker buildx create --name %s` (buildx 0.13 and later refuse a builder name that a context has); "+
		"refreshd removes only a copy of the default context, as `breeze --builder %s` makes: see what uses it, then `docker context rm %s` or rename it",
		e.Builder, e.Endpoint, e.DefaultEndpoint, e.Builder, e.Builder, e.Builder)
}

// contextClash is the change that clears a docker context named like builder name, which is
// about to be created: nil when there is no such context, a ChangeContext removing it when
// it is a copy of the default context, else a *ContextClashError.
func (c *Client) contextClash(ctx context.Context, name string) (*Change, error) {
	list, err := c.Contexts(ctx)
	if err != nil {
		return nil, err
	}
	var clash, def *DockerContextInfo
	for i := range list {
		switch list[i].Name {
		case name:
			clash = &list[i]
		case DefaultContext:
			def = &list[i]
		}
	}
	if clash == nil {
		return nil, nil
	}
	if def == nil || clash.DockerEndpoint == "" || clash.DockerEndpoint != def.DockerEndpoint {
		e := &ContextClashError{Builder: name, Endpoint: clash.DockerEndpoint}
		if def != nil {
			e.DefaultEndpoint = def.DockerEndpoint
		}
		return nil, e
	}
	ch := &Change{Kind: ChangeContext, Argv: ContextRmArgv(c.docker(), name),
		Reason: fmt.Sprintf("docker context %s, a copy of the default context (%s), blocks creating the builder", name, def.DockerEndpoint)}
	current, err := c.currentContext()
	if err != nil {
		return nil, err
	}
	if current == name {
		// `docker context rm --force` puts the configuration's current context back to
		// default only when it removes the context docker resolves as current: name it so.
		// Under refreshd's own DOCKER_CONTEXT the configuration would go on naming a
		// context that no longer exists, and breeze's next `docker context create`, a
		// copy of the current one, would fail.
		ch.Env = []string{"DOCKER_CONTEXT=" + name}
		ch.Reason += "; it is docker's current context, which goes back to default"
	}
	return ch, nil
}

// currentContext is the current context docker's configuration names (config.json's
// currentContext), "" for none.
func (c *Client) currentContext() (string, error) {
	dir, err := c.configDir()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read docker's current context: %w", err)
	}
	var cfg struct{ CurrentContext string }
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("read docker's current context: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	return cfg.CurrentContext, nil
}
