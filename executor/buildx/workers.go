package buildx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
)

// workerInfo is the subset of `buildctl debug workers --format '{{json .}}'` we read.
type workerInfo struct {
	Platforms []struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platforms"`
}

// parseWorkers returns the platforms of the first worker in `buildctl debug workers --format
// '{{json .}}'` output, native first.
func parseWorkers(out []byte) ([]string, error) {
	var ws []workerInfo
	if err := json.Unmarshal(out, &ws); err != nil {
		return nil, fmt.Errorf("parse buildctl debug workers output: %w", err)
	}
	if len(ws) == 0 || len(ws[0].Platforms) == 0 {
		return nil, fmt.Errorf("buildctl debug workers: no worker with platforms")
	}
	var ps []string
	for _, p := range ws[0].Platforms {
		ps = append(ps, Platform{OS: p.OS, Arch: p.Architecture, Variant: p.Variant}.normalize().String())
	}
	return ps, nil
}

// buildctlTarget returns the buildctl arguments (--addr and, for a TLS remote node, its TLS
// flags) and extra environment that reach node n, or ok == false when buildctl cannot
// (kubernetes pods have generated names).
//
// A docker-container node runs in container buildx_buildkit_NODE on the docker host that is
// the node's endpoint. buildctl's docker-container connection helper runs the docker CLI
// (`docker exec -i CONTAINER buildctl dial-stdio`) with buildctl's environment, so an
// endpoint that is a host URL (unix://, tcp://, ssh://, npipe://) is passed as DOCKER_HOST
// and any other endpoint, a docker context name, as the helper's ?context= parameter.
// Without either, buildctl would ask the local docker engine for the container.
func buildctlTarget(driver string, n NodeState) (args, env []string, ok bool) {
	switch driver {
	case "docker-container":
		addr := "docker-container://buildx_buildkit_" + n.Name
		switch {
		case strings.Contains(n.Endpoint, "://"):
			env = []string{"DOCKER_HOST=" + n.Endpoint}
		case n.Endpoint != "":
			addr += "?context=" + url.QueryEscape(n.Endpoint)
		}
		return []string{"--addr=" + addr}, env, true
	case "remote":
		args = []string{"--addr=" + n.Endpoint}
		// The buildx remote driver's TLS options, as buildctl's flags: the guard reaches a
		// TLS node with the same files buildx uses.
		// Each value bound to its flag: never read as an option.
		tls := []struct{ opt, flag string }{
			{"cacert", "--tlscacert="}, {"cert", "--tlscert="}, {"key", "--tlskey="}, {"servername", "--tlsservername="},
		}
		for _, f := range tls {
			if v := n.DriverOpts[f.opt]; v != "" {
				args = append(args, f.flag+v)
			}
		}
		return args, nil, true
	}
	return nil, nil, false
}

// nativeFromLs infers a running node's native platform from its `buildx ls` platform list when
// buildctl cannot reach it: ls lists the pinned platforms first, then the worker's own
// (native first) without duplicates. If the first worker platform is in the pinned
// platform's native family, the pinned platform was the native one and was deduplicated away.
func nativeFromLs(pinned, platforms []string) (string, error) {
	pin := map[string]bool{}
	for _, p := range pinned {
		pin[p] = true
	}
	var rest []string
	for _, p := range platforms {
		np, err := parsePlatform(p)
		if err != nil {
			return "", err
		}
		if !pin[np.String()] {
			rest = append(rest, np.String())
		}
	}
	switch {
	case len(rest) == 0 && len(pinned) > 0:
		return pinned[0], nil
	case len(rest) == 0:
		return "", fmt.Errorf("node lists no platforms")
	case len(pinned) > 0:
		if ok, _ := Native(pinned[0], rest[0]); ok {
			return pinned[0], nil
		}
	}
	return rest[0], nil
}

// NativePlatform returns a running node's native platform: the first platform of its worker
// as `buildctl --addr ADDR debug workers` lists it (remote and docker-container drivers), or,
// for drivers buildctl cannot address, inferred from `buildx ls` (nativeFromLs).
func (c *Client) NativePlatform(ctx context.Context, driver string, n NodeState) (string, error) {
	target, env, ok := buildctlTarget(driver, n)
	if !ok {
		native, err := nativeFromLs(n.Pinned, n.Platforms)
		if err != nil {
			return "", fmt.Errorf("native platform of node %s (%s): %w", n.Name, n.Endpoint, err)
		}
		return native, nil
	}
	addr := strings.TrimPrefix(target[0], "--addr=")
	argv := append(append([]string{c.buildctl()}, target...), "debug", "workers", "--format", "{{json .}}")
	out, err := c.queryEnv(ctx, env, argv...)
	if err != nil {
		return "", fmt.Errorf("native platform of node %s (%s): %w", n.Name, addr, err)
	}
	ps, err := parseWorkers(out)
	if err != nil {
		return "", fmt.Errorf("native platform of node %s (%s): %w", n.Name, addr, err)
	}
	return ps[0], nil
}

// PlatformCheck is the emulation check of one node: its declared (pinned) platform against
// its worker's native platform.
type PlatformCheck struct {
	Node, Endpoint   string
	Declared, Native string
	Emulated         bool // Declared is neither Native nor in its native family
}

func (p PlatformCheck) String() string {
	return fmt.Sprintf("node %s (%s) declared %s, native %s", p.Node, p.Endpoint, p.Declared, p.Native)
}

// probeParallel bounds the buildctl probes CheckPlatforms runs at once: each is a process
// of its own (tens of MB), and a fleet of a hundred nodes must not start a hundred.
const probeParallel = 8

// CheckPlatforms compares each declared node's platform with its worker's native platform,
// asking up to probeParallel nodes at once (a round trip each, so provisioning a pool of N
// costs N/probeParallel of them, not N). state must come from WaitRunning (every node
// running). The checks are in spec order; the first error in that order is returned.
func (c *Client) CheckPlatforms(ctx context.Context, spec BuilderSpec, state *BuilderState) ([]PlatformCheck, error) {
	type result struct {
		check PlatformCheck
		skip  bool
		err   error
	}
	results := make([]result, len(spec.Nodes))
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for i, n := range spec.Nodes {
		if n.Platform == "" {
			results[i].skip = true
			continue
		}
		ns := state.Node(n.Name)
		if ns == nil {
			results[i].err = fmt.Errorf("check platforms of builder %s: node %s is missing", spec.Name, n.Name)
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			native, err := c.NativePlatform(ctx, state.Driver, *ns)
			if err != nil {
				results[i].err = fmt.Errorf("check platforms of builder %s: %w", spec.Name, err)
				return
			}
			ok, err := Native(native, n.Platform)
			if err != nil {
				results[i].err = fmt.Errorf("check platforms of builder %s node %s: %w", spec.Name, n.Name, err)
				return
			}
			results[i].check = PlatformCheck{Node: n.Name, Endpoint: ns.Endpoint, Declared: n.Platform, Native: native, Emulated: !ok}
		})
	}
	wg.Wait()
	var checks []PlatformCheck
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		if !r.skip {
			checks = append(checks, r.check)
		}
	}
	return checks, nil
}
