// Package redact hides secret values in text that leaves refreshd (webhook payloads, logs,
// error messages). A secret is hidden in the forms it is likely to appear in, not only
// verbatim: with surrounding white space trimmed, line by line when it spans lines (output
// is redacted a line at a time), URL query, path and full percent-escaping in either hex
// case, Go and JSON string quoting, and base64 (standard and URL alphabets, padded or not)
// at every alignment, as when a prefix such as "user:" precedes it in HTTP basic auth or
// docker's config.json. The engine (process output, errors, history) and the daemon (webhook
// payloads) both use it, so every path out of refreshd hides the same things.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Mask replaces each secret occurrence.
const Mask = "***"

// minPart is the shortest piece of a secret masked on its own: a line of a multi-line secret,
// or the alignment-independent middle of its base64 form. Shorter pieces would mask ordinary
// words in every log line while hiding almost nothing.
const minPart = 6

// Redactor replaces secret values. The zero value and a nil *Redactor redact nothing.
type Redactor struct {
	r        *strings.Replacer
	variants []string // longest first
}

// New returns a redactor for values; empty values are ignored.
func New(values ...string) *Redactor {
	seen := map[string]bool{}
	var variants []string
	add := func(v string, min int) {
		if len(v) >= min && !seen[v] {
			seen[v] = true
			variants = append(variants, v)
		}
	}
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			continue
		}
		forms := []string{v, strings.TrimSpace(v)}
		if strings.ContainsAny(v, "\r\n") {
			for line := range strings.Lines(v) {
				if line = strings.TrimSpace(line); len(line) >= minPart {
					forms = append(forms, line)
				}
			}
		}
		for i, f := range forms {
			min := 1
			if i >= 2 {
				min = minPart // a line of a multi-line secret
			}
			for _, e := range encodings(f) {
				add(e, min)
			}
			for _, e := range base64Forms([]byte(f)) {
				add(e, minPart)
			}
		}
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

// encodings returns v as it appears verbatim, escaped in URLs, and quoted in Go and JSON
// strings (an error message that quotes a URL, a JSON payload).
func encodings(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v),
		percentAll(v, upperHex), percentAll(v, lowerHex),
		percentReserved(v, upperHex), percentReserved(v, lowerHex)}
	if q := strconv.Quote(v); len(q) >= 2 {
		out = append(out, q[1:len(q)-1])
	}
	if j, err := json.Marshal(v); err == nil && len(j) >= 2 {
		out = append(out, string(j[1:len(j)-1]))
	}
	if u, err := url.Parse(v); err == nil && u.Scheme != "" {
		out = append(out, u.String(), u.Redacted())
	}
	return out
}

const (
	upperHex = "0123456789ABCDEF"
	lowerHex = "0123456789abcdef"
)

// percentAll escapes every byte, as some clients encode credentials.
func percentAll(v, hex string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		b.WriteByte('%')
		b.WriteByte(hex[v[i]>>4])
		b.WriteByte(hex[v[i]&15])
	}
	return b.String()
}

// percentReserved escapes every byte but RFC 3986's unreserved characters.
func percentReserved(v, hex string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// base64Forms returns, for each alignment of v within a longer encoded string (v preceded by
// 0, 1 or 2 other bytes, and followed by anything), the characters of the encoding that
// depend on v's bytes alone; with nothing before it, also the whole padded and unpadded
// encodings. Those characters appear in the encoding of any text that contains v at that
// alignment, so masking them hides "user:"+secret as well as the secret alone.
func base64Forms(v []byte) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		whole := enc.EncodeToString(v)
		out = append(out, whole, strings.TrimRight(whole, "="))
		for k := 0; k < 3; k++ {
			buf := append(make([]byte, k), v...)
			s := enc.EncodeToString(buf)
			// A character carries 6 bits, so k prefix bytes (8k bits) reach into the first
			// ceil(8k/6) characters: 0, 2 or 3.
			skip := [3]int{0, 2, 3}[k]
			// After the last whole group, a trailing partial group of r bytes gives r pure
			// characters followed by one that mixes in whatever comes next.
			n := len(buf)
			keep := 4*(n/3) + [3]int{0, 1, 2}[n%3]
			if keep > skip {
				out = append(out, s[skip:keep])
			}
		}
	}
	return out
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
