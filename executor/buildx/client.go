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

func (c *Client) env() []string {
	if c.DockerConfig == "" {
		return nil
	}
	return []string{"DOCKER_CONFIG=" + c.DockerConfig}
}

func (c *Client) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// run executes a command that changes something, through c.Run.
func (c *Client) run(ctx context.Context, argv ...string) error {
	r := c.Run
	if r == nil {
		r = ExecRunner(nil, nil)
	}
	c.log().Debug("buildx command", "argv", argv)
	return r(ctx, argv, c.env(), nil)
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
