// Package registry reads the OCI distribution API (registry HTTP API v2): whether a tag
// exists and its digest, and an image's config `created` time. It retries 5xx and 429 with
// backoff honouring Retry-After (go-retryablehttp), speaks the Bearer token and Basic auth
// flows, and takes credentials from the docker config (auths, credHelpers, credsStore).
package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// Docker Hub's names: references say docker.io, the API lives at registry-1.docker.io and
// credentials are stored under the index URL.
const (
	dockerHub         = "docker.io"
	dockerHubAPI      = "registry-1.docker.io"
	dockerHubAuthsKey = "https://index.docker.io/v1/"
)

// Ref is a parsed image reference.
type Ref struct {
	Host   string // registry host[:port] as written ("docker.io" for Docker Hub)
	Repo   string // repository path, "library/" added for official Docker Hub images
	Tag    string // "latest" when neither tag nor digest is given
	Digest string // sha256:... when the reference pins one
}

func (r Ref) String() string {
	s := r.Host + "/" + r.Repo
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

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

var (
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// ParseRef parses host[:port]/path[:tag][@digest]. A first component that has no "." or ":"
// and is not "localhost" is a Docker Hub path, as docker reads it.
func ParseRef(s string) (Ref, error) {
	orig := s
	if s == "" || strings.TrimSpace(s) != s {
		return Ref{}, fmt.Errorf("image reference %q: empty or padded", orig)
	}
	var r Ref
	if i := strings.IndexByte(s, '@'); i >= 0 {
		r.Digest = s[i+1:]
		s = s[:i]
		if !digestPattern.MatchString(r.Digest) {
			return Ref{}, fmt.Errorf("image reference %q: bad digest %q", orig, r.Digest)
		}
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "/") {
		r.Tag = s[i+1:]
		s = s[:i]
		if !tagPattern.MatchString(r.Tag) {
			return Ref{}, fmt.Errorf("image reference %q: bad tag %q", orig, r.Tag)
		}
	}
	first, rest, found := strings.Cut(s, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.Host, s = first, rest
	} else {
		r.Host = dockerHub
		if !found {
			s = "library/" + s
		}
	}
	if s == "" {
		return Ref{}, fmt.Errorf("image reference %q: no repository", orig)
	}
	for _, c := range strings.Split(s, "/") {
		if !repoComponent.MatchString(c) {
			return Ref{}, fmt.Errorf("image reference %q: bad repository component %q (lower-case letters, digits, separators)", orig, c)
		}
	}
	r.Repo = s
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}
