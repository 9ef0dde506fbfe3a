package plan

import "regexp"

// TransientPatterns returns the default retry_on output patterns: failures of buildx and
// registries that a later attempt usually survives. A step with retry attempts > 1 and no
// retry_on is retried only when its output matches one of these, so a compile error is not
// retried three times while a registry hiccup is.
func TransientPatterns() []*regexp.Regexp {
	pats := []string{
		`failed to export cache`,
		`failed to configure registry cache (importer|exporter)`,
		`i/o timeout`,
		`TLS handshake timeout`,
		`connection reset by peer`,
		`connection refused`,
		`503 Service Unavailable`,
		`502 Bad Gateway`,
		`504 Gateway Timeout`,
		`429 Too Many Requests`,
		`unexpected EOF`,
		`context deadline exceeded`,
		`no route to host`,
	}
	out := make([]*regexp.Regexp, len(pats))
	for i, p := range pats {
		out[i] = regexp.MustCompile(p)
	}
	return out
}

// mustCompileDefault compiles DefaultIgnoreLines, a constant known to be valid.
func mustCompileDefault() *regexp.Regexp { return regexp.MustCompile(DefaultIgnoreLines) }
