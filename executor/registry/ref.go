// Package registry reads the OCI distribution API (registry HTTP API v2): whether a tag
// exists and its digest, and an image's config `created` time. It retries 5xx and 429 with
// backoff honouring Retry-After (go-retryablehttp), speaks the Bearer token and Basic auth
// flows, and takes credentials from the docker config (auths, credHelpers, credsStore).
package registry

import (
	"github.com/refreshd/refreshd/internal/imageref"
)

// Docker Hub's names: references say docker.io, the API lives at registry-1.docker.io and
// credentials are stored under the index URL.
const (
	dockerHub         = "docker.io"
	dockerHubAPI      = "registry-1.docker.io"
	dockerHubAuthsKey = "https://index.docker.io/v1/"
)

// Ref is a parsed image reference.
type Ref imageref.Ref

func (r Ref) String() string { return imageref.Ref(r).String() }

// reference returns what the manifests endpoint takes: the digest if pinned, else the tag.
func (r Ref) reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// apiHost is where the registry API is served.
func (r Ref) apiHost() string {
	if r.Host == dockerHub {
		return dockerHubAPI
	}
	return r.Host
}

// ParseRef parses host[:port]/path[:tag][@digest] (imageref.Parse, the grammar the plan
// loader checks rendered references with).
func ParseRef(s string) (Ref, error) {
	r, err := imageref.Parse(s)
	return Ref(r), err
}
