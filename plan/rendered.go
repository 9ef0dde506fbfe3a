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
