package buildx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Node statuses as `docker buildx ls` reports them. An unreachable remote node is inactive.
const (
	StatusRunning  = "running"
	StatusInactive = "inactive"
)

// BuilderState is one builder as `docker buildx ls --format json` shows it, plus the pinned
// platforms buildx stores for each node.
type BuilderState struct {
	Name   string
	Driver string
	Err    string
	Nodes  []NodeState
}

// NodeState is one node of a builder.
type NodeState struct {
	Name     string
	Endpoint string
	Status   string
	// Platforms as ls lists them: the pinned ones first, then, for a running node, the
	// worker's (deduplicated), so the worker's native platform is not reliably first here.
	Platforms []string
	// Pinned are the platforms the node was created with (--platform), from buildx's store.
	Pinned     []string
	DriverOpts map[string]string
	Err        string
}

// Node returns the named node, or nil.
func (b *BuilderState) Node(name string) *NodeState {
	for i := range b.Nodes {
		if b.Nodes[i].Name == name {
			return &b.Nodes[i]
		}
	}
	return nil
}

// lsEntry is the subset of `docker buildx ls --format json` (one object per line) we use.
type lsEntry struct {
	Name   string
	Driver string
	Err    string
	Nodes  []struct {
		Name      string
		Endpoint  string
		Status    string
		Platforms []string
		Err       string
	}
}

// parseLs parses the output of `docker buildx ls --format json`: one JSON object per builder
// per line.
func parseLs(out []byte) ([]BuilderState, error) {
	var builders []BuilderState
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var e lsEntry
		if err := json.Unmarshal(text, &e); err != nil {
			return nil, fmt.Errorf("parse docker buildx ls output line %d: %w", line, err)
		}
		b := BuilderState{Name: e.Name, Driver: e.Driver, Err: e.Err}
		for _, n := range e.Nodes {
			b.Nodes = append(b.Nodes, NodeState{
				Name: n.Name, Endpoint: n.Endpoint, Status: n.Status, Platforms: n.Platforms, Err: n.Err,
			})
		}
		builders = append(builders, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read docker buildx ls output: %w", err)
	}
	return builders, nil
}

// LsArgv is the command that lists every builder with its nodes, as JSON (parseLs reads it).
func LsArgv(docker string) []string {
	return []string{docker, "buildx", "ls", "--format", "json"}
}

// Builder reads the named builder's state. found is false when no such builder exists.
func (c *Client) Builder(ctx context.Context, name string) (state *BuilderState, found bool, err error) {
	all, err := c.Builders(ctx, name)
	if err != nil {
		return nil, false, err
	}
	state, found = all[name]
	return state, found, nil
}

// Builders reads the state of the named builders with one `docker buildx ls`, whatever
// their number: ls lists every builder anyway, and each call costs a docker CLI start plus
// a round trip to every node, so a pool of N nodes must not pay it N times. A name missing
// from the map has no builder.
func (c *Client) Builders(ctx context.Context, names ...string) (map[string]*BuilderState, error) {
	out, err := c.query(ctx, LsArgv(c.docker())...)
	if err != nil {
		return nil, fmt.Errorf("read builders: %w", err)
	}
	builders, err := parseLs(out)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	states := map[string]*BuilderState{}
	for i := range builders {
		b := &builders[i]
		if !want[b.Name] {
			continue
		}
		if err := c.readStore(b); err != nil {
			return nil, err
		}
		states[b.Name] = b
	}
	return states, nil
}

// storeEntry is buildx's own record of a builder, $DOCKER_CONFIG/buildx/instances/NAME. It is
// the only place that says which platforms a node was pinned to: ls mixes them with the
// worker's.
type storeEntry struct {
	Driver string
	Nodes  []struct {
		Name      string
		Platforms []struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
		}
		DriverOpts map[string]string
	}
}

func (c *Client) readStore(b *BuilderState) error {
	dir, err := c.configDir()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "buildx", "instances", b.Name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a builder buildx did not store (e.g. the docker driver's default)
	}
	if err != nil {
		return fmt.Errorf("read builder %s pinned platforms: %w", b.Name, err)
	}
	var e storeEntry
	if err := json.Unmarshal(data, &e); err != nil {
		return fmt.Errorf("parse builder store %s: %w", path, err)
	}
	for _, sn := range e.Nodes {
		n := b.Node(sn.Name)
		if n == nil {
			continue
		}
		n.Pinned = nil
		for _, p := range sn.Platforms {
			n.Pinned = append(n.Pinned, Platform{OS: p.OS, Arch: p.Architecture, Variant: p.Variant}.normalize().String())
		}
		n.DriverOpts = sn.DriverOpts
	}
	return nil
}
