// Package safearg holds the rules a value must follow before refreshd hands it to git,
// docker buildx or buildctl as one argument: a ref, a repository, a build context, an
// endpoint. Every argv refreshd builds ends its options before such values (git's
// --end-of-options, `--` for docker, or --flag=VALUE bound to its flag), and these rules
// refuse what would still be read as something else: an option (a leading "-"), a refspec
// that writes a local ref (":"), a transport that runs a program ("ext::"), a control
// character that forges a log line. The plan loader applies them where a value is rendered,
// naming where it came from (a param, a var, a value from the tree); the packages that
// build the argv apply them again just before the process starts. Hidden is the same care
// for text from outside shown on a line: which characters are replaced there.
package safearg

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// GitProtocols are the transports refreshd's git may use (GIT_ALLOW_PROTOCOL): no remote
// helper (ext::, fd::, ...) that runs a program or talks over a file descriptor.
const GitProtocols = "file:git:http:https:ssh"

// Operand checks a value that becomes one argument of its own: not empty, not starting with
// "-", no control character (newline, NUL, ...).
func Operand(v string) error {
	if v == "" {
		return fmt.Errorf("it is empty")
	}
	if strings.HasPrefix(v, "-") {
		return fmt.Errorf(`it starts with "-", so the program would read it as an option`)
	}
	return Text(v)
}

// Hidden reports whether r changes how the text around it reads instead of showing itself:
// a control character (a newline forges a line, ESC starts a terminal sequence) or a format
// character (Unicode Cf: the bidi embeddings and overrides U+202A–U+202E, the isolates
// U+2066–U+2069, the marks U+200E and U+200F, zero-width characters), which make a terminal
// line or a page read other than what it holds ("Trojan Source"). Text from outside that
// refreshd shows on one line (an outside commit's author and pins, a failing test's id, a
// status or history line) has these replaced.
func Hidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// Text checks a value bound to its option (--build-arg=K=V): no control character.
func Text(v string) error {
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("it holds the control character %q at byte %d", v[i], i)
	}
	return nil
}

// GitRef checks a branch, tag or commit id that git fetch reads as the source of a refspec:
// an Operand that is a valid ref name (git check-ref-format) and no refspec syntax: no ":"
// (SRC:DST writes a local ref), no leading "+" (force) or "^" (negative refspec), no "*".
func GitRef(v string) error {
	if err := Operand(v); err != nil {
		return err
	}
	switch {
	case strings.Contains(v, ":"):
		return fmt.Errorf(`it holds ":", which makes it a refspec writing a local ref (SRC:DST)`)
	case strings.HasPrefix(v, "+"):
		return fmt.Errorf(`it starts with "+", which makes it a forced refspec`)
	case v == "@":
		return fmt.Errorf(`"@" is not a ref name`)
	case strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") || strings.Contains(v, "//"):
		return fmt.Errorf("it has an empty path component")
	case strings.Contains(v, "..") || strings.Contains(v, "@{"):
		return fmt.Errorf(`it holds ".." or "@{"`)
	case strings.HasSuffix(v, ".") || strings.HasSuffix(v, ".lock"):
		return fmt.Errorf(`it ends with "." or ".lock"`)
	case strings.ContainsFunc(v, func(r rune) bool { return r == 0x7f || strings.ContainsRune(" ~^?*[\\", r) }):
		return fmt.Errorf(`it holds a space or one of ~^?*[\`)
	}
	for _, c := range strings.Split(v, "/") {
		if strings.HasPrefix(c, ".") {
			return fmt.Errorf(`a component starts with "."`)
		}
	}
	return nil
}

// GitRepo checks a repository git fetches from or pushes to: an Operand that names no
// remote helper (TRANSPORT::ADDRESS: ext:: runs a program, fd:: talks over a descriptor)
// and whose host does not start with "-" (ssh would read it as an option).
func GitRepo(v string) error {
	if err := Operand(v); err != nil {
		return err
	}
	if h := helper(v); h != "" {
		return fmt.Errorf("it names git's remote helper %q (%s::...), which may run a program; use https://, ssh://, git://, file:// or a path", h, h)
	}
	host := ""
	if scheme, rest, ok := strings.Cut(v, "://"); ok {
		if u, err := url.Parse(v); err == nil {
			host = u.Hostname()
		} else {
			host, _, _ = strings.Cut(rest, "/")
			if i := strings.LastIndexByte(host, '@'); i >= 0 {
				host = host[i+1:]
			}
		}
		if scheme == "" {
			return fmt.Errorf("it has no scheme before ://")
		}
	} else if before, _, ok := strings.Cut(v, ":"); ok && !strings.Contains(before, "/") {
		// scp-like [user@]host:path
		host = before[strings.LastIndexByte(before, '@')+1:]
	}
	if strings.HasPrefix(host, "-") {
		return fmt.Errorf(`its host %q starts with "-", so ssh would read it as an option`, host)
	}
	return nil
}

// helper returns the TRANSPORT of a TRANSPORT::ADDRESS repository, as git reads it
// (transport.c: URL scheme characters, then "::"), or "".
func helper(v string) string {
	i := 0
	for i < len(v) {
		c := v[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !(alpha || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-')) {
			break
		}
		i++
	}
	if i > 0 && strings.HasPrefix(v[i:], "::") {
		return v[:i]
	}
	return ""
}
