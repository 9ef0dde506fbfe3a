// Package imageref parses container image references (host[:port]/path[:tag][@digest]) the
// way docker reads them. It is the one grammar refreshd has: the plan loader checks the
// references a plan renders with it, and the registry client parses what it checks.
package imageref

import (
	"fmt"
	"regexp"
	"strings"
)

// dockerHub is the host of references without one.
const dockerHub = "docker.io"

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

var (
	repoComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// Parse parses host[:port]/path[:tag][@digest]. A first component that has no "." or ":"
// and is not "localhost" is a Docker Hub path, as docker reads it.
func Parse(s string) (Ref, error) {
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
