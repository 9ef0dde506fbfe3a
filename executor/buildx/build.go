package buildx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/refreshd/refreshd/internal/safearg"
)

// BuildArg is one --build-arg.
type BuildArg struct{ Key, Value string }

// BuildOptions is one per-platform registry cache build.
type BuildOptions struct {
	Builder      string
	Platform     string // exactly one
	Context      string // directory, relative to the runner's working directory or absolute
	File         string // Dockerfile; "" means the context's
	Target       string
	BuildArgs    []BuildArg // in the order given
	CacheRef     string     // registry ref with tag, e.g. REPO:cache-linux-amd64
	MetadataFile string     // where buildx writes the build's metadata (buildx.build.ref)
}

// BuildArgv is the exact `docker buildx build` command for o. The result only goes to the
// build cache (--output type=cacheonly) and from there to the registry cache ref
// (mode=max: every layer, the way Airflow's --prepare-buildx-cache does it). Every value
// is bound to its flag (--flag=VALUE) and the context comes after `--`: no value is ever
// read as an option (o.check refuses the rest before a build starts).
func BuildArgv(docker string, o BuildOptions) []string {
	if docker == "" {
		docker = "docker"
	}
	argv := []string{docker, "buildx", "build", "--builder=" + o.Builder, "--platform=" + o.Platform, "--progress=plain"}
	if o.File != "" {
		argv = append(argv, "--file="+o.File)
	}
	if o.Target != "" {
		argv = append(argv, "--target="+o.Target)
	}
	for _, a := range o.BuildArgs {
		argv = append(argv, "--build-arg="+a.Key+"="+a.Value)
	}
	argv = append(argv,
		"--cache-from=type=registry,ref="+o.CacheRef,
		"--cache-to=type=registry,ref="+o.CacheRef+",mode=max",
		"--output=type=cacheonly",
	)
	if o.MetadataFile != "" {
		argv = append(argv, "--metadata-file="+o.MetadataFile)
	}
	return append(argv, "--", o.Context)
}

// check refuses what buildx would read as something else: a context or Dockerfile "-"
// (standard input) or starting with "-", a build arg whose name holds "=", a cache ref that
// adds attributes to the cache export (","), a control character anywhere.
func (o BuildOptions) check() error {
	for _, v := range []struct{ what, v string }{
		{"builder", o.Builder}, {"platform", o.Platform}, {"context", o.Context},
		{"file", o.File}, {"target", o.Target}, {"metadata file", o.MetadataFile},
	} {
		if v.v == "" && v.what != "context" && v.what != "builder" && v.what != "platform" {
			continue
		}
		if err := safearg.Operand(v.v); err != nil {
			return fmt.Errorf("%s %q: %w", v.what, v.v, err)
		}
	}
	for _, a := range o.BuildArgs {
		if err := safearg.Operand(a.Key); err != nil || strings.Contains(a.Key, "=") {
			return fmt.Errorf("build arg name %q: not a name (empty, \"-\" first, \"=\" or a control character)", a.Key)
		}
		if err := safearg.Text(a.Value); err != nil {
			return fmt.Errorf("build arg %s: %w", a.Key, err)
		}
	}
	if err := safearg.Operand(o.CacheRef); err != nil || strings.ContainsAny(o.CacheRef, ",\"") {
		return fmt.Errorf("cache ref %q: not an image reference for --cache-to", o.CacheRef)
	}
	return nil
}

// Build runs BuildArgv and reads its metadata file (when o.MetadataFile is set).
func (c *Client) Build(ctx context.Context, o BuildOptions) (Metadata, error) {
	if err := o.check(); err != nil {
		return Metadata{}, fmt.Errorf("build %s cache for %s on builder %s: %w", o.Platform, o.CacheRef, o.Builder, err)
	}
	if err := c.run(ctx, BuildArgv(c.docker(), o)...); err != nil {
		return Metadata{}, fmt.Errorf("build %s cache for %s on builder %s: %w", o.Platform, o.CacheRef, o.Builder, err)
	}
	if o.MetadataFile == "" {
		return Metadata{}, nil
	}
	return readMetadata(o.MetadataFile)
}

// Metadata is what a build's --metadata-file says about it.
type Metadata struct {
	Builder, Node, Ref string // from buildx.build.ref = builder/node/ref: the node that built
	// CacheManifest is the digest of the exported cache manifest, when buildx reports it.
	CacheManifest string
}

// readMetadata reads a buildx --metadata-file.
func readMetadata(path string) (Metadata, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Metadata{}, fmt.Errorf("read build metadata: %w", err)
	}
	return parseMetadata(path, data)
}

// parseMetadata parses metadata file contents; name is used in errors.
func parseMetadata(name string, data []byte) (Metadata, error) {
	var raw struct {
		Ref   string `json:"buildx.build.ref"`
		Cache string `json:"cache.manifest"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Metadata{}, fmt.Errorf("parse build metadata %s: %w", name, err)
	}
	parts := strings.SplitN(raw.Ref, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return Metadata{}, fmt.Errorf("build metadata %s: buildx.build.ref %q is not builder/node/ref", name, raw.Ref)
	}
	m := Metadata{Builder: parts[0], Node: parts[1], Ref: parts[2]}
	if raw.Cache != "" {
		var desc struct {
			Digest string `json:"digest"`
		}
		if err := json.Unmarshal([]byte(raw.Cache), &desc); err == nil {
			m.CacheManifest = desc.Digest
		}
	}
	return m, nil
}
