package executor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/refreshd/refreshd/executor/buildx"
	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/plan"
)

// buildxClient is a buildx.Client whose changing commands (create, bootstrap, build) run
// through the attempt, so their output is streamed, logged, redacted and killed on timeout.
// Queries whose stdout is parsed (ls, buildctl debug workers) run through the attempt's
// runner too: same process rules and recorded groups, their output kept for the error.
func (t *Tools) buildxClient(a *Attempt) *buildx.Client {
	query := buildx.ExecRunner(a.Procs, nil)
	return &buildx.Client{
		Docker:        t.Docker,
		Buildctl:      t.Buildctl,
		DockerConfig:  t.DockerConfig,
		DockerContext: t.DockerContext,
		Run: func(ctx context.Context, argv, env []string, stdout io.Writer) error {
			if stdout != nil {
				return query(ctx, argv, env, stdout)
			}
			st, err := a.Exec(ctx, "", argv, env...)
			if err != nil {
				return err
			}
			if st.Code != 0 {
				if st.Signal != "" {
					return fmt.Errorf("%s: killed by %s", strings.Join(argv[:min(3, len(argv))], " "), st.Signal)
				}
				return fmt.Errorf("%s: exit code %d (output in the attempt log)", strings.Join(argv[:min(3, len(argv))], " "), st.Code)
			}
			return nil
		},
		Query: query,
		Log:   a.Log,
	}
}

// registryClient is the Tools' registry client logging to log. The client and its
// connection pool are built once per Tools, on first use, and shared by every step (and
// safe for concurrent use): a new pooled transport per step would leave its idle
// connections open until they time out.
func (t *Tools) registryClient(log *slog.Logger) *registry.Client {
	t.registryOnce.Do(func() {
		t.registry = registry.New(registry.Options{
			DockerConfig: t.DockerConfig,
			PlainHTTP:    t.PlainHTTPRegistries,
			Attempts:     t.RegistryAttempts,
			RetryWaitMin: t.RegistryRetryWaitMin,
			RetryWaitMax: t.RegistryRetryWaitMax,
		})
	})
	return t.registry.WithLog(log)
}

// TagLookup reads the digest a tag has now (found false: no such tag) with the engine's
// registry settings (plain-HTTP registries, docker config, retries), logging to log: the
// daemon's periodic look at watched tags (daemon/tagwatch). One client serves every call,
// so registry tokens are reused.
func (t *Tools) TagLookup(log *slog.Logger) func(ctx context.Context, ref string) (digest string, found bool, err error) {
	return t.registryClient(log).Digest
}

// builderSpec translates a plan builder into buildx's own terms.
//
// Only the first node of each platform is in the buildx builder itself: buildx keeps a
// platform pinned to one node of a builder (pinning it on a node unpins it from the others,
// docker/buildx store/nodegroup.go validateDuplicates), and sends it to that node anyway.
// The other nodes of a pool exist as their single-node builders (poolSpecs).
func builderSpec(b *plan.Builder) buildx.BuilderSpec {
	spec := buildx.BuilderSpec{Name: b.Name, Driver: b.Driver}
	seen := map[string]bool{}
	for _, n := range b.Nodes {
		if seen[n.Platform] {
			continue
		}
		seen[n.Platform] = true
		spec.Nodes = append(spec.Nodes, nodeSpec(n))
	}
	return spec
}

func nodeSpec(n plan.Node) buildx.NodeSpec {
	return buildx.NodeSpec{Name: n.Name, Endpoint: n.Endpoint, Platform: n.Platform, DriverOpts: n.DriverOpts}
}

// poolSpecs are the single-node builders BUILDER.NODE of every node whose platform has a
// pool (poolBuilderName), in declared order.
func poolSpecs(b *plan.Builder) []buildx.BuilderSpec {
	var out []buildx.BuilderSpec
	for _, n := range b.Nodes {
		if name := poolBuilderName(b, n); name != b.Name {
			out = append(out, buildx.BuilderSpec{Name: name, Driver: b.Driver, Nodes: []buildx.NodeSpec{nodeSpec(n)}})
		}
	}
	return out
}
