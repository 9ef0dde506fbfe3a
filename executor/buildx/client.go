package buildx

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// Client runs docker buildx and buildctl for one DOCKER_CONFIG.
type Client struct {
	Docker   string // docker CLI with the buildx plugin; default "docker"
	Buildctl string // default "buildctl"
	// DockerConfig is passed as DOCKER_CONFIG to every docker command: builder state lives
	// under it. "" means the environment's DOCKER_CONFIG, else ~/.docker.
	DockerConfig string
	// DockerContext is passed as DOCKER_CONTEXT to every docker command; default "default".
	// The current context is a setting in DOCKER_CONFIG/config.json that a step may change:
	// breeze's `ci-image build --builder NAME` runs `docker context create NAME` and
	// `docker context use NAME`. Naming the context keeps every command of refreshd on the
	// endpoint it meant (DOCKER_HOST, when set, still wins over it, as docker documents).
	DockerContext string
	// Run executes commands that change or build (create, append, leave, rm, bootstrap,
	// build), streaming their output. Default ExecRunner(nil, nil).
	Run Runner
	// Query executes read-only commands whose stdout is parsed (ls, debug workers).
	// Default ExecRunner(nil, nil).
	Query Runner
	Log   *slog.Logger // default slog.Default()
}

func (c *Client) docker() string {
	if c.Docker == "" {
		return "docker"
	}
	return c.Docker
}

func (c *Client) buildctl() string {
	if c.Buildctl == "" {
		return "buildctl"
	}
	return c.Buildctl
}

// DefaultContext is the docker context refreshd's own docker commands use unless told
// otherwise: docker's built-in one (DOCKER_HOST, else the local socket).
const DefaultContext = "default"

func (c *Client) dockerContext() string {
	if c.DockerContext == "" {
		return DefaultContext
	}
	return c.DockerContext
}

// env is the environment every command of the client gets on top of the process's own.
func (c *Client) env() []string {
	env := []string{"DOCKER_CONTEXT=" + c.dockerContext()}
	if c.DockerConfig != "" {
		env = append(env, "DOCKER_CONFIG="+c.DockerConfig)
	}
	return env
}

func (c *Client) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// run executes a command that changes something, through c.Run.
func (c *Client) run(ctx context.Context, argv ...string) error {
	return c.runEnv(ctx, nil, argv...)
}

// runEnv is run with extra environment variables, over the client's own.
func (c *Client) runEnv(ctx context.Context, env []string, argv ...string) error {
	r := c.Run
	if r == nil {
		r = ExecRunner(nil, nil)
	}
	c.log().Debug("buildx command", "argv", argv)
	return r(ctx, argv, append(c.env(), env...), nil)
}

// query executes a read-only command and returns its standard output.
func (c *Client) query(ctx context.Context, argv ...string) ([]byte, error) {
	return c.queryEnv(ctx, nil, argv...)
}

// queryEnv is query with extra environment variables.
func (c *Client) queryEnv(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	r := c.Query
	if r == nil {
		r = ExecRunner(nil, nil)
	}
	var out bytes.Buffer
	if err := r(ctx, argv, append(c.env(), env...), &out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// configDir is the DOCKER_CONFIG in effect, as docker resolves it.
func (c *Client) configDir() (string, error) {
	if c.DockerConfig != "" {
		return c.DockerConfig, nil
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the docker config directory: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}
