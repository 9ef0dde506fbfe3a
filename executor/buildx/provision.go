package buildx

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/internal/safearg"
)

// BuilderSpec is the builder a caller wants: its name, driver and nodes, each pinned to one
// platform. All nodes of a builder share its driver.
type BuilderSpec struct {
	Name   string
	Driver string // remote | docker-container | kubernetes | ...
	Nodes  []NodeSpec
}

// NodeSpec is one node of a builder.
type NodeSpec struct {
	Name       string
	Endpoint   string // tcp://, unix://, ssh://, a docker context, or "" where the driver needs none
	Platform   string // os/arch[/variant]: the node's native platform, the one it is pinned to
	DriverOpts map[string]string
}

// ChangeKind is one kind of builder change.
type ChangeKind string

const (
	ChangeCreate ChangeKind = "create" // the builder with its first node
	ChangeAppend ChangeKind = "append" // a node the builder lacks
	ChangeUpdate ChangeKind = "update" // a node whose endpoint, platform or driver options differ
	ChangeLeave  ChangeKind = "leave"  // a node the spec no longer has
	ChangeRemove ChangeKind = "rm"     // the whole builder (driver change), before create
	// ChangeContext removes a docker context of the builder's name that blocks its create
	// (contextClash).
	ChangeContext ChangeKind = "rm-context"
)

// Change is one command that moves a builder towards its spec.
type Change struct {
	Kind   ChangeKind
	Node   string
	Reason string
	Argv   []string
	Env    []string // over the client's own environment ("K=V"), if any
}

func (ch Change) String() string {
	return fmt.Sprintf("%s %s: %s", ch.Kind, ch.Node, ch.Reason)
}

// Diff returns the commands that make cur (nil when the builder does not exist) match spec, in
// the order to run them: rm, create, leave, update, append. An unchanged builder gives none.
func Diff(docker string, spec BuilderSpec, cur *BuilderState) []Change {
	if docker == "" {
		docker = "docker"
	}
	var changes []Change
	fresh := func(reason string) {
		for i, n := range spec.Nodes {
			kind, why := ChangeAppend, "declared node missing"
			if i == 0 {
				kind, why = ChangeCreate, reason
			}
			changes = append(changes, Change{Kind: kind, Node: n.Name, Reason: why, Argv: createArgv(docker, spec, n, i > 0)})
		}
	}
	switch {
	case cur == nil:
		fresh("builder does not exist")
		return changes
	case cur.Context:
		fresh("builder does not exist (ls lists the docker context " + spec.Name + " in its place)")
		return changes
	case cur.Driver != spec.Driver:
		// buildx cannot change a builder's driver in place.
		changes = append(changes, Change{Kind: ChangeRemove, Reason: fmt.Sprintf("driver %q, want %q", cur.Driver, spec.Driver),
			Argv: rmArgv(docker, spec.Name)})
		fresh("recreate with driver " + spec.Driver)
		return changes
	}
	want := map[string]bool{}
	for _, n := range spec.Nodes {
		want[n.Name] = true
	}
	kept := 0
	for _, n := range cur.Nodes {
		if want[n.Name] {
			kept++
		}
	}
	if kept == 0 {
		// Leaving every node is refused by buildx; recreate instead.
		changes = append(changes, Change{Kind: ChangeRemove, Reason: "no declared node exists",
			Argv: rmArgv(docker, spec.Name)})
		fresh("recreate with the declared nodes")
		return changes
	}
	for _, n := range cur.Nodes {
		if !want[n.Name] {
			changes = append(changes, Change{Kind: ChangeLeave, Node: n.Name, Reason: "node not declared",
				Argv: []string{docker, "buildx", "create", "--name=" + spec.Name, "--leave", "--node=" + n.Name}})
		}
	}
	var appends []Change
	for _, n := range spec.Nodes {
		have := cur.Node(n.Name)
		if have == nil {
			appends = append(appends, Change{Kind: ChangeAppend, Node: n.Name, Reason: "declared node missing", Argv: createArgv(docker, spec, n, true)})
			continue
		}
		if why := nodeDiff(n, have); why != "" {
			changes = append(changes, Change{Kind: ChangeUpdate, Node: n.Name, Reason: why, Argv: createArgv(docker, spec, n, true)})
		}
	}
	return append(changes, appends...)
}

// nodeDiff says how a node differs from its spec, "" when it does not.
func nodeDiff(want NodeSpec, have *NodeState) string {
	var why []string
	if want.Endpoint != "" && strings.TrimRight(want.Endpoint, "/") != strings.TrimRight(have.Endpoint, "/") {
		why = append(why, fmt.Sprintf("endpoint %q, want %q", have.Endpoint, want.Endpoint))
	}
	if want.Platform != "" {
		wp, err := parsePlatform(want.Platform)
		if err != nil || len(have.Pinned) != 1 || have.Pinned[0] != wp.String() {
			why = append(why, fmt.Sprintf("pinned %v, want [%s]", have.Pinned, want.Platform))
		}
	}
	if len(want.DriverOpts) > 0 || len(have.DriverOpts) > 0 {
		if !maps.Equal(want.DriverOpts, have.DriverOpts) {
			why = append(why, "driver options differ")
		}
	}
	return strings.Join(why, ", ")
}

// createArgv is `docker buildx create` for one node: a new builder, or --append (which also
// updates an existing node of that name). --driver is always passed: without it a tcp:// or
// ssh:// endpoint silently becomes a remote builder (docker/buildx#1293).
//
// Every value is bound to its flag (--flag=VALUE) and the endpoint comes after `--`: none is
// ever read as an option (BuilderSpec.check refuses the rest before provisioning starts).
func createArgv(docker string, spec BuilderSpec, n NodeSpec, appendNode bool) []string {
	argv := []string{docker, "buildx", "create", "--name=" + spec.Name, "--driver=" + spec.Driver}
	if appendNode {
		argv = append(argv, "--append")
	}
	argv = append(argv, "--node="+n.Name)
	if n.Platform != "" {
		argv = append(argv, "--platform="+n.Platform)
	}
	for _, k := range slices.Sorted(maps.Keys(n.DriverOpts)) {
		argv = append(argv, "--driver-opt="+k+"="+n.DriverOpts[k])
	}
	if n.Endpoint != "" {
		argv = append(argv, "--", n.Endpoint)
	}
	return argv
}

// rmArgv removes a builder, keeping its nodes' state (the build cache).
func rmArgv(docker, name string) []string {
	return []string{docker, "buildx", "rm", "--force", "--keep-state", "--", name}
}

// check refuses a name, driver, endpoint or driver option that buildx would read as an
// option or that would split into more than one (a control character, "=" in an option's
// name).
func (spec BuilderSpec) check() error {
	for _, v := range []struct{ what, v string }{{"name", spec.Name}, {"driver", spec.Driver}} {
		if err := safearg.Operand(v.v); err != nil {
			return fmt.Errorf("builder %s %q: %w", v.what, v.v, err)
		}
	}
	for _, n := range spec.Nodes {
		if err := safearg.Operand(n.Name); err != nil {
			return fmt.Errorf("builder %s node name %q: %w", spec.Name, n.Name, err)
		}
		for _, v := range []struct{ what, v string }{{"endpoint", n.Endpoint}, {"platform", n.Platform}} {
			if v.v == "" {
				continue
			}
			if err := safearg.Operand(v.v); err != nil {
				return fmt.Errorf("builder %s node %s %s %q: %w", spec.Name, n.Name, v.what, v.v, err)
			}
		}
		for k, v := range n.DriverOpts {
			if err := safearg.Operand(k); err != nil || strings.Contains(k, "=") {
				return fmt.Errorf("builder %s node %s driver option %q: not a name (empty, \"-\" first, \"=\" or a control character)", spec.Name, n.Name, k)
			}
			if err := safearg.Text(v); err != nil {
				return fmt.Errorf("builder %s node %s driver option %s: %w", spec.Name, n.Name, k, err)
			}
		}
	}
	return nil
}

// Provision makes the builder match spec and returns the changes it made (none for a builder
// that already matches). It checks the result: a builder that still differs is an error.
func (c *Client) Provision(ctx context.Context, spec BuilderSpec) ([]Change, error) {
	changes, _, err := c.ProvisionAll(ctx, []BuilderSpec{spec})
	return changes, err
}

// ProvisionAll makes every builder of specs match its spec, reading their state with one
// `docker buildx ls` per round for all of them: a builder that already matches costs that
// one call and nothing else. It returns the changes made, in order, and the builders'
// states as last read (every spec's builder is in it unless err is set). A builder that
// still differs after provisioning is an error.
func (c *Client) ProvisionAll(ctx context.Context, specs []BuilderSpec) ([]Change, map[string]*BuilderState, error) {
	names := make([]string, len(specs))
	for i, spec := range specs {
		if len(spec.Nodes) == 0 {
			return nil, nil, fmt.Errorf("provision builder %s: no nodes declared", spec.Name)
		}
		if err := spec.check(); err != nil {
			return nil, nil, fmt.Errorf("provision builder %s: %w", spec.Name, err)
		}
		names[i] = spec.Name
	}
	what := "provision builder " + strings.Join(names, ", ")
	var done []Change
	// Two rounds: an --append that pins a platform unpins it from the other nodes, so a
	// swap of platforms between nodes needs a second pass. A third read only checks.
	for round := 0; ; round++ {
		states, err := c.Builders(ctx, names...)
		if err != nil {
			return done, nil, fmt.Errorf("%s: %w", what, err)
		}
		var rest []Change
		changed := false
		for _, spec := range specs {
			changes := Diff(c.docker(), spec, states[spec.Name])
			if round == 2 {
				if len(changes) > 0 {
					rest = append(rest, changes...)
				}
				continue
			}
			if slices.ContainsFunc(changes, func(ch Change) bool { return ch.Kind == ChangeCreate }) {
				// A docker context of the builder's name would block the create.
				pre, err := c.contextClash(ctx, spec.Name)
				if err != nil {
					return done, nil, fmt.Errorf("provision builder %s: %w", spec.Name, err)
				}
				if pre != nil {
					changes = append([]Change{*pre}, changes...)
				}
			}
			for _, ch := range changes {
				c.log().Info("builder change", "builder", spec.Name, "node", ch.Node, "change", string(ch.Kind), "reason", ch.Reason)
				if err := c.runEnv(ctx, ch.Env, ch.Argv...); err != nil {
					return done, nil, fmt.Errorf("provision builder %s: %s node %s: %w", spec.Name, ch.Kind, ch.Node, err)
				}
				done = append(done, ch)
				changed = true
			}
		}
		if len(rest) > 0 {
			return done, nil, fmt.Errorf("%s: still differs after provisioning: %v", what, rest)
		}
		if !changed {
			return done, states, nil
		}
	}
}

// WaitPolicy bounds WaitRunning.
type WaitPolicy struct {
	Attempts         int           // checks in all; default 3
	Backoff          time.Duration // delay after the first failed check, doubled each time; default 2s
	BootstrapTimeout time.Duration // one `docker buildx inspect --bootstrap`; default 30s
}

func (p WaitPolicy) withDefaults() WaitPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	if p.Backoff <= 0 {
		p.Backoff = 2 * time.Second
	}
	if p.BootstrapTimeout <= 0 {
		p.BootstrapTimeout = 30 * time.Second
	}
	return p
}

// NodeNotRunningError says which node of a builder is not running, where, and how it looked.
type NodeNotRunningError struct {
	Builder, Node, Endpoint, Status string
	Checks                          int
	Detail                          string // the node's error, or the bootstrap's, if any
}

func (e *NodeNotRunningError) Error() string {
	msg := fmt.Sprintf("builder %s node %s (%s) is %s, not running, after %d checks", e.Builder, e.Node, e.Endpoint, e.Status, e.Checks)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// BootstrapArgv is the command that starts every node of builder name.
func BootstrapArgv(docker, name string) []string {
	return []string{docker, "buildx", "inspect", "--bootstrap", "--", name}
}

// WaitRunning requires every node of the builder to be running. A node that is not is
// bootstrapped (`docker buildx inspect --bootstrap`) and checked again with backoff; after the
// last check the first such node is returned as a *NodeNotRunningError.
func (c *Client) WaitRunning(ctx context.Context, name string, policy WaitPolicy) (*BuilderState, error) {
	states, err := c.WaitRunningAll(ctx, []string{name}, nil, policy)
	return states[name], err
}

// WaitRunningAll requires every node of the named builders to be running, starting from
// states (as ProvisionAll returns them; nil reads them first): when they all are, it issues
// no command at all. Builders with a node that is not running are bootstrapped, and all are
// read again with one `docker buildx ls`, with backoff. After the last check it returns the
// states it last read and the first node not running, in names order, as a
// *NodeNotRunningError. The states are nil only with an error that is not one of those.
func (c *Client) WaitRunningAll(ctx context.Context, names []string, states map[string]*BuilderState, policy WaitPolicy) (map[string]*BuilderState, error) {
	policy = policy.withDefaults()
	delay := policy.Backoff
	bootErr := map[string]error{}
	what := strings.Join(names, ", ")
	for check := 1; ; check++ {
		if states == nil || check > 1 {
			var err error
			if states, err = c.Builders(ctx, names...); err != nil {
				return nil, fmt.Errorf("check builder %s nodes: %w", what, err)
			}
		}
		var down []*NodeNotRunningError
		for _, name := range names {
			cur := states[name]
			if cur == nil {
				return nil, fmt.Errorf("check builder %s nodes: builder does not exist", name)
			}
			for i := range cur.Nodes {
				if n := cur.Nodes[i]; n.Status != StatusRunning {
					down = append(down, &NodeNotRunningError{Builder: name, Node: n.Name, Endpoint: n.Endpoint, Status: n.Status, Checks: check, Detail: n.Err})
					break
				}
			}
		}
		if len(down) == 0 {
			return states, nil
		}
		if check >= policy.Attempts {
			e := down[0]
			if e.Status == "" {
				e.Status = "unknown"
			}
			if e.Detail == "" && bootErr[e.Builder] != nil {
				e.Detail = lastLine(bootErr[e.Builder].Error())
			}
			return states, e
		}
		// At once: an unreachable node may take the whole bootstrap timeout, and a fleet
		// may have several down.
		errs := make([]error, len(down))
		var wg sync.WaitGroup
		for i, d := range down {
			c.log().Warn("builder node not running", "builder", d.Builder, "node", d.Node, "endpoint", d.Endpoint, "status", d.Status, "check", check)
			wg.Go(func() {
				bctx, cancel := context.WithTimeout(ctx, policy.BootstrapTimeout)
				defer cancel()
				errs[i] = c.run(bctx, BootstrapArgv(c.docker(), d.Builder)...)
			})
		}
		wg.Wait()
		for i, d := range down {
			bootErr[d.Builder] = errs[i]
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("check builder %s nodes: %w", what, ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
