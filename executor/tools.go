package executor

import (
	"sync"
	"time"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/executor/registry"
)

// Tools are the outside programs and clients that built-in actions drive. The zero value
// uses the programs on PATH and the default docker configuration.
type Tools struct {
	Docker       string // docker CLI (with the buildx plugin); default "docker"
	Buildctl     string // buildctl, for the emulation guard; default "buildctl"
	Git          string // default "git"
	DockerConfig string // DOCKER_CONFIG for buildx builder state and registry credentials; "" = default
	// DockerContext is the docker context (DOCKER_CONTEXT) of every docker command refreshd
	// itself runs; "" is docker's "default". Steps are not given it: they keep docker's
	// current context, which they may change (buildx.Client.DockerContext).
	DockerContext string

	// NodeWait bounds how long provisioning waits for every builder node to be running
	// (checks, backoff, one bootstrap's timeout). Zero values take buildx's defaults:
	// 3 checks, 2 s doubling, 30 s per bootstrap.
	NodeWait buildx.WaitPolicy
	// PlainHTTPRegistries are registries reached over http ("host" or "host:port"), e.g. a
	// registry on 127.0.0.1 without TLS. Every other registry is https.
	PlainHTTPRegistries []string
	// RegistryAttempts is the number of tries of one registry request on 5xx/429 (default 5);
	// RegistryRetryWaitMin/Max bound the backoff (defaults 500ms/15s; Retry-After honoured up to the max).
	RegistryAttempts     int
	RegistryRetryWaitMin time.Duration
	RegistryRetryWaitMax time.Duration
	// RegistryBudget bounds the time a run's skip_if conditions wait on registries in all
	// (default DefaultRegistryBudget); past it the conditions left count as not fresh.
	RegistryBudget time.Duration

	// registry is built once, on first use (registryClient), so every step shares one
	// connection pool. Tools must not be copied after first use.
	registryOnce sync.Once
	registry     *registry.Client
}

func (t *Tools) docker() string {
	if t.Docker == "" {
		return "docker"
	}
	return t.Docker
}

func (t *Tools) git() string {
	if t.Git == "" {
		return "git"
	}
	return t.Git
}
