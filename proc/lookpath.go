package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LookPath finds argv0 in the PATH of env (the child's environment, not refreshd's): a name
// with a slash is taken as it is, relative to dir; relative PATH entries are relative to dir.
func LookPath(argv0, dir string, env []string) (string, error) {
	if argv0 == "" {
		return "", errors.New("empty command")
	}
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		f := filepath.Join(d, argv0)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s: executable not found in PATH (%s)", argv0, pathEnv)
}
