package buildx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
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
// (mode=max: every layer, the way Airflow's --prepare-buildx-cache does it).
func BuildArgv(docker string, o BuildOptions) []string {
	if docker == "" {
		docker = "docker"
	}
	argv := []string{docker, "buildx", "build", "--builder", o.Builder, "--platform", o.Platform, "--progress", "plain"}
	if o.File != "" {
		argv = append(argv, "--file", o.File)
	}
	if o.Target != "" {
		argv = append(argv, "--target", o.Target)
	}
	for _, a := range o.BuildArgs {
		argv = append(argv, "--build-arg", a.Key+"="+a.Value)
	}
	argv = append(argv,
		"--cache-from", "type=registry,ref="+o.CacheRef,
		"--cache-to", "type=registry,ref="+o.CacheRef+",mode=max",
		"--output", "type=cacheonly",
	)
	if o.MetadataFile != "" {
		argv = append(argv, "--metadata-file", o.MetadataFile)
	}
	return append(argv, o.Context)
}

// Build runs BuildArgv and reads its metadata file (when o.MetadataFile is set).
func (c *Client) Build(ctx context.Context, o BuildOptions) (Metadata, error) {
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
