package main

import (
	"fmt"
	"net"
	"strings"
)

// plainHTTPFlag registers --plain-http-registry (repeatable): registries reached over http
// instead of https, such as a local registry without TLS (the demo's 127.0.0.1:5000). Like
// buildkitd.toml's `http = true`, it is a property of the build box, not of a plan; nothing is
// plain HTTP unless named here.
func plainHTTPFlag(fs *flagSet) *[]string {
	var hosts []string
	fs.Func("plain-http-registry", "registry reached over http, `HOST` or HOST:PORT (e.g. a local registry without TLS); repeatable", func(s string) error {
		if s == "" || strings.ContainsAny(s, "/ ") {
			return fmt.Errorf("%q: want HOST or HOST:PORT, without a scheme or path", s)
		}
		if strings.Contains(s, ":") {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return fmt.Errorf("%q: want HOST or HOST:PORT: %w", s, err)
			}
		}
		hosts = append(hosts, s)
		return nil
	})
	return &hosts
}
