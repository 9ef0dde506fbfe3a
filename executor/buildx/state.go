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
	"strings"
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
	// Context: buildx's store has no builder of this name; ls lists a docker context of the
	// name in its place (as a builder with the docker driver). It is not a builder refreshd
	// can change: `buildx rm` refuses it (see contextClash).
	Context bool
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
	err := jsonLines(out, "docker buildx ls", func(e *lsEntry) {
		b := BuilderState{Name: e.Name, Driver: e.Driver, Err: e.Err}
		for _, n := range e.Nodes {
			b.Nodes = append(b.Nodes, NodeState{
				Name: n.Name, Endpoint: n.Endpoint, Status: n.Status, Platforms: n.Platforms, Err: n.Err,
			})
		}
		builders = append(builders, b)
	})
	if err != nil {
		return nil, err
	}
	return builders, nil
}

// jsonLines decodes out, one JSON object of type T per non-empty line (the output of a
// docker command's --format json), handing each to fn. Errors name the command and line.
func jsonLines[T any](out []byte, command string, fn func(*T)) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(text, &v); err != nil {
			return fmt.Errorf("parse %s output line %d: %w", command, line, err)
		}
		fn(&v)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s output: %w", command, err)
	}
	return nil
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
	// buildx stores a builder under its name in lower case (store.ValidateName).
	path := filepath.Join(dir, "buildx", "instances", strings.ToLower(b.Name))
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// ls lists the store's builders and every docker context (the default one
		// included), the store's first: one not in the store is a context.
		b.Context = true
		return nil
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
