package plan

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/internal/imageref"
)

// Values reach image references, paths and branch names through templates, so the loader's
// checks of the template text are not enough: "{{ .python }}" is a fine tag until a matrix
// value is "3.11 slim". These check what a template rendered to, for every instance, so
// that validate and the dry run refuse what the run would refuse, naming the value.

// checkImageRef returns why ref (as rendered for what) is not an image reference, or "".
func checkImageRef(what, ref string) string {
	if _, err := imageref.Parse(ref); err != nil {
		return fmt.Sprintf("%s renders to %q, which is not an image reference: %v", what, ref, err)
	}
	return ""
}

// checkRelPath returns why p (as rendered for what) is not a path relative to its base
// that stays inside it, or "".
func checkRelPath(what, p string) string {
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) || slices.Contains(strings.Split(filepath.ToSlash(p), "/"), "..") || strings.ContainsRune(p, 0) {
		return fmt.Sprintf("%s renders to %q, which leaves its directory (absolute, or with ..)", what, p)
	}
	return ""
}

// checkBranch returns why b is not a branch name git accepts (git check-ref-format), or "".
func checkBranch(b string) string {
	bad := func(why string) string {
		return fmt.Sprintf("branch renders to %q, which is not a git branch name: %s", b, why)
	}
	switch {
	case b == "" || b == "@":
		return bad("empty")
	case strings.HasPrefix(b, "-"):
		return bad("starts with -")
	case strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.Contains(b, "//"):
		return bad("empty path component")
	case strings.Contains(b, "..") || strings.Contains(b, "@{"):
		return bad(`contains ".." or "@{"`)
	case strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock"):
		return bad(`ends with "." or ".lock"`)
	case strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) }):
		return bad(`contains a space, a control character or one of ~^:?*[\`)
	}
	for _, c := range strings.Split(b, "/") {
		if strings.HasPrefix(c, ".") {
			return bad("a component starts with .")
		}
	}
	return ""
}
