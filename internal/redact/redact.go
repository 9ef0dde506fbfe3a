// Package redact hides secret values in text that leaves refreshd (webhook payloads, logs,
// error messages). A secret is hidden in the forms it is likely to appear in, not only
// verbatim: URL query and path escaping, and base64 as in HTTP basic auth and docker's
// config.json. The engine (process output, errors, history) and the daemon (webhook
// payloads) both use it, so every path out of refreshd hides the same things.
package redact

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// Mask replaces each secret occurrence.
const Mask = "***"

// Redactor replaces secret values. The zero value and a nil *Redactor redact nothing.
type Redactor struct {
	r        *strings.Replacer
	variants []string // longest first
}

// New returns a redactor for values; empty values are ignored.
func New(values ...string) *Redactor {
	seen := map[string]bool{}
	var variants []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			variants = append(variants, v)
		}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		add(v)
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
		add(base64.StdEncoding.EncodeToString([]byte(v)))
		add(strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(v)), "="))
		add(base64.URLEncoding.EncodeToString([]byte(v)))
	}
	if len(variants) == 0 {
		return &Redactor{}
	}
	// Longest first: strings.Replacer prefers earlier pairs at one position, so a secret
	// that contains another is replaced whole.
	slices.SortStableFunc(variants, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(variants))
	for _, v := range variants {
		pairs = append(pairs, v, Mask)
	}
	return &Redactor{r: strings.NewReplacer(pairs...), variants: variants}
}

// String returns s with every secret replaced by Mask.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// SafeCut returns where a forced break of buf (a line longer than a writer's limit) may fall
// so that no secret is split across the two pieces, which would then each escape
// replacement: before any suffix of buf that is a proper prefix of a secret variant.
func (r *Redactor) SafeCut(buf []byte) int {
	cut := len(buf)
	if r == nil {
		return cut
	}
	for _, v := range r.variants {
		for n := min(len(v)-1, len(buf)); n > 0; n-- {
			if bytes.HasSuffix(buf, []byte(v[:n])) {
				cut = min(cut, len(buf)-n)
				break
			}
		}
	}
	return cut
}
