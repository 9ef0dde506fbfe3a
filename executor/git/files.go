package git

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// source is one generated file to publish.
type source struct {
	Path string // as matched, under the workdir
	Name string // base name: files are copied flat
	Data []byte
}

// FileChange is one published file whose meaningful lines differ from the branch.
type FileChange struct {
	Path    string // in the branch (Dir/name)
	New     bool   // the branch did not have it
	Changes []Change
}

// collect reads the files matching patterns under workdir. It refuses patterns that are
// absolute or climb out with "..", matches whose real path (after symlinks) is outside the
// workdir, anything that is not a regular file, and two matches with one base name (a flat
// copy would let one overwrite the other). No match at all is an error: publishing nothing
// is a failed generation, not "unchanged".
func collect(workdir string, patterns []string) ([]source, error) {
	if !filepath.IsAbs(workdir) {
		return nil, fmt.Errorf("workdir %q is not absolute", workdir)
	}
	realWork, err := filepath.EvalSymlinks(workdir)
	if err != nil {
		return nil, fmt.Errorf("resolve workdir: %w", err)
	}
	var out []source
	byName := map[string]string{}
	for _, pat := range patterns {
		if err := checkRelative(pat); err != nil {
			return nil, fmt.Errorf("files pattern %q: %w", pat, err)
		}
		matches, err := filepath.Glob(filepath.Join(workdir, pat))
		if err != nil {
			return nil, fmt.Errorf("files pattern %q: %w", pat, err)
		}
		sort.Strings(matches)
		for _, m := range matches {
			rel, _ := filepath.Rel(workdir, m)
			real, err := filepath.EvalSymlinks(m)
			if err != nil {
				return nil, fmt.Errorf("files pattern %q: resolve %s: %w", pat, rel, err)
			}
			if !within(realWork, real) {
				return nil, fmt.Errorf("files pattern %q: %s resolves to %s, outside the workdir %s: refused", pat, rel, real, workdir)
			}
			fi, err := os.Stat(real)
			if err != nil {
				return nil, fmt.Errorf("files pattern %q: %w", pat, err)
			}
			if !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("files pattern %q: %s is not a regular file (%s)", pat, rel, fi.Mode().Type())
			}
			name := filepath.Base(m)
			if prev, dup := byName[name]; dup {
				if prev == rel {
					continue // matched by two patterns
				}
				return nil, fmt.Errorf("files pattern %q: %s and %s have the same name %s and would overwrite each other in the flat copy", pat, prev, rel, name)
			}
			byName[name] = rel
			data, err := os.ReadFile(real)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", rel, err)
			}
			out = append(out, source{Path: rel, Name: name, Data: data})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("files %s: no file matches in %s (the generation produced nothing to publish)", strings.Join(patterns, ", "), workdir)
	}
	return out, nil
}

// checkRelative refuses paths that are absolute or contain a ".." element.
func checkRelative(p string) error {
	if filepath.IsAbs(p) {
		return errors.New("absolute; must be relative to the workdir")
	}
	for _, el := range strings.Split(filepath.ToSlash(p), "/") {
		if el == ".." {
			return errors.New(`contains ".."; must stay inside the workdir`)
		}
	}
	return nil
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// apply writes into the clone every source whose meaningful lines (those not matching
// ignore) differ from the branch's file, and reports those files. Files whose only change
// is in ignored lines keep the branch's version, so a commit holds only real changes.
// Files on the branch that the run did not generate are left alone.
func apply(clone, dir string, sources []source, ignore *regexp.Regexp) ([]FileChange, error) {
	var out []FileChange
	for _, s := range sources {
		rel := filepath.ToSlash(filepath.Join(dir, s.Name))
		dst := filepath.Join(clone, filepath.FromSlash(rel))
		if err := noSymlinks(clone, rel); err != nil {
			return nil, err
		}
		old, err := os.ReadFile(dst)
		isNew := errors.Is(err, fs.ErrNotExist)
		if err != nil && !isNew {
			return nil, fmt.Errorf("read %s in the clone: %w", rel, err)
		}
		if !isNew && bytes.Equal(meaningful(old, ignore), meaningful(s.Data, ignore)) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, fmt.Errorf("copy %s: %w", s.Path, err)
		}
		if err := os.WriteFile(dst, s.Data, 0o644); err != nil {
			return nil, fmt.Errorf("copy %s to %s: %w", s.Path, rel, err)
		}
		out = append(out, FileChange{Path: rel, New: isNew, Changes: diffPins(rel, parsePins(old), parsePins(s.Data))})
	}
	return out, nil
}

// noSymlinks refuses a destination rel (slash-separated, inside clone) that is, or sits
// under, a symlink in the clone. The branch decides what the clone holds: a symlink there
// would make refreshd read and write wherever it points, outside the clone (another file of
// the host, as refreshd's user). Refusing, rather than replacing the link, leaves the branch
// as its owners made it and says what to fix; nothing has been written when it fails.
func noSymlinks(clone, rel string) error {
	p := clone
	for _, el := range strings.Split(rel, "/") {
		p = filepath.Join(p, el)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // created below as a real directory or file
		}
		if err != nil {
			return fmt.Errorf("check %s in the clone: %w", rel, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			at, _ := filepath.Rel(clone, p)
			target, _ := os.Readlink(p)
			return fmt.Errorf("publish %s: %s on the branch is a symlink (to %s); refreshd does not write through symlinks: replace it with a regular %s on the branch",
				rel, filepath.ToSlash(at), target, map[bool]string{true: "file", false: "directory"}[filepath.ToSlash(at) == rel])
		}
	}
	return nil
}

// meaningful is data without the lines matching ignore, with line endings normalized.
func meaningful(data []byte, ignore *regexp.Regexp) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		if ignore != nil && ignore.MatchString(line) {
			continue
		}
		b.WriteString(strings.TrimRight(line, " \t"))
		b.WriteByte('\n')
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
