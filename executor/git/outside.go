package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/refreshd/refreshd/internal/safearg"
)

// OutsideCommit is a commit on a constraints branch that this refreshd (its state
// directory's clone) did not make, found when a publish fetched the branch, with the pin
// changes it made to the files refreshd publishes there. Its author is whatever the
// committer wrote: text to escape wherever it is shown, cut to MaxAuthorBytes.
type OutsideCommit struct {
	Commit  string
	Author  string    // "Name <email>" as git gives it, bounded, without control or format characters
	At      time.Time // the committer's date, never later than when refreshd saw it
	Changes []Change
}

// Bounds of the look at commits made by others.
const (
	// MaxOutsideCommits is how many first-parent commits since refreshd last saw the branch
	// one publish reads, newest first: a rewritten branch or thousands of commits cost the
	// same as fifty. The result's OutsideNote says when there were more.
	MaxOutsideCommits = 50
	// MaxAuthorBytes bounds an outside commit's author as recorded.
	MaxAuthorBytes = 200
	// MaxPinBytes bounds each package name (with its marker) and version read from a
	// constraints file (parsePins): what is on the branch is whatever its committers wrote.
	MaxPinBytes = 512
	// MaxOutsideDiffBytes bounds the diffs of those commits read (git is stopped past it):
	// a commit that rewrites a published file with gigabytes costs no more memory than
	// this. The newest commits whose diffs fit are read, and OutsideNote says so.
	MaxOutsideDiffBytes = 8 << 20
	// MaxOutsidePins bounds the pin changes recorded of them all (each is kept on the run's
	// record and indexed in the constraint history), newest commits first.
	MaxOutsidePins = 2000
)

// seenRef, in refreshd's clone of a branch, is the last branch head refreshd saw there (or
// the commit it last handed to git push): what a later fetch brings beyond it was made by
// others. A commit refreshd pushed has the head it fetched as its parent, so the commits
// reachable from seenRef are what refreshd saw or made, whether or not that push landed.
const seenRef = "refs/refreshd/seen"

// lastSeen is the clone's seenRef, or, in a clone from before it existed, the remote-tracking
// branch its last fetch left; "" when the clone has neither (refreshd never looked at the
// branch from this state directory: nothing before now counts as made by others).
func (c *clone) lastSeen(ctx context.Context) string {
	if _, err := os.Stat(filepath.Join(c.dir, ".git", "HEAD")); err != nil {
		return ""
	}
	for _, ref := range []string{seenRef, "refs/remotes/origin/" + c.branch} {
		out, err := c.git(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
		if err == nil {
			return strings.TrimSpace(string(out))
		}
	}
	return ""
}

// markSeen records commit as seen (seenRef).
func (c *clone) markSeen(ctx context.Context, commit string) error {
	if _, err := c.git(ctx, "update-ref", "--no-deref", seenRef, commit); err != nil {
		return fmt.Errorf("record the branch head seen: %w", err)
	}
	return nil
}

// madeRefs, in refreshd's clone of a branch, name the commits refreshd made there while a
// look at outside commits could not read them: seenRef stays where it was, so the next
// look reads them, and leaves out refreshd's own (refs/refreshd/made/COMMIT).
const madeRefs = "refs/refreshd/made/"

// markMade records commit as made by refreshd and not seen (madeRefs).
func (c *clone) markMade(ctx context.Context, commit string) error {
	if _, err := c.git(ctx, "update-ref", "--no-deref", madeRefs+commit, commit); err != nil {
		return fmt.Errorf("record the commit made: %w", err)
	}
	return nil
}

// MaxMadeRefs bounds the madeRefs of a clone: while the look keeps failing, each publish
// adds one, and a look reads past (and forgets) them all. Past the bound, capMade forgets
// the oldest and moves seenRef to the newest forgotten: the look starts from there.
const MaxMadeRefs = 100

// capMade keeps the newest MaxMadeRefs madeRefs (by commit date) and, when there were more,
// marks the newest of the others seen (what is reachable from it was seen or made here,
// as for any commit refreshd handed to git push), and returns a note saying what the next
// look will not read.
func (c *clone) capMade(ctx context.Context) (string, error) {
	out, err := c.git(ctx, "for-each-ref", "--sort=-committerdate", "--format=%(objectname)", madeRefs)
	if err != nil {
		return "", fmt.Errorf("list the commits made while the branch was not read: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) <= MaxMadeRefs {
		return "", nil
	}
	drop := ids[MaxMadeRefs:]
	if err := c.markSeen(ctx, drop[0]); err != nil {
		return "", err
	}
	if err := c.forgetMade(ctx, toSet(drop)); err != nil {
		return "", err
	}
	return fmt.Sprintf("more than %d commits made while the look kept failing: the next look starts from %.12s (what others pushed before it is not read)", MaxMadeRefs, drop[0]), nil
}

func toSet(ids []string) map[string]bool {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set
}

// made lists the commits madeRefs name.
func (c *clone) made(ctx context.Context) (map[string]bool, error) {
	out, err := c.git(ctx, "for-each-ref", "--format=%(objectname)", madeRefs)
	if err != nil {
		return nil, fmt.Errorf("list the commits made while the branch was not read: %w", err)
	}
	return toSet(strings.Fields(string(out))), nil
}

// forgetMade removes the madeRefs of own, once a look read past them.
func (c *clone) forgetMade(ctx context.Context, own map[string]bool) error {
	for id := range own {
		if _, err := c.git(ctx, "update-ref", "-d", madeRefs+id); err != nil {
			return fmt.Errorf("forget the commit made: %w", err)
		}
	}
	return nil
}

// outside reads the first-parent commits from seen (exclusive) to head, newest first, at
// most MaxOutsideCommits, but for refreshd's own (own: made while an earlier look failed),
// and returns those that changed a package pin in one of paths (slash-separated, in the
// branch), with a note when the walk stopped short or the branch was rewritten. seen ==
// "" (first look) or seen == head finds nothing.
func (c *clone) outside(ctx context.Context, seen, head string, paths []string, own map[string]bool, now time.Time) ([]OutsideCommit, string, error) {
	if seen == "" || head == "" || seen == head || len(paths) == 0 {
		return nil, "", nil
	}
	note := ""
	onBranch, err := c.isAncestor(ctx, seen, head)
	if err != nil {
		return nil, "", fmt.Errorf("compare the branch with the head seen before: %w", err)
	}
	if !onBranch {
		// A commit refreshd made whose push did not land (refused, or lost in a race) is
		// not on the branch, but its parent, the head refreshd fetched, is: no rewrite.
		if parentOn, err := c.isAncestor(ctx, seen+"^", head); err != nil || !parentOn {
			note = fmt.Sprintf("the branch was rewritten since refreshd last saw it (%.12s is no longer on it)", seen)
		}
	}
	out, err := c.git(ctx, "rev-list", "--first-parent", fmt.Sprintf("--max-count=%d", MaxOutsideCommits+1+len(own)), "--end-of-options", head, "^"+seen)
	if err != nil {
		return nil, "", fmt.Errorf("list the commits made since refreshd last saw the branch: %w", err)
	}
	ids := slices.DeleteFunc(strings.Fields(string(out)), func(id string) bool { return own[id] })
	if len(ids) > MaxOutsideCommits {
		ids = ids[:MaxOutsideCommits]
		note = addNote(note, fmt.Sprintf("more than %d commits since refreshd last saw the branch: read the newest %d", MaxOutsideCommits, MaxOutsideCommits))
	}
	if len(ids) == 0 {
		return nil, note, nil
	}
	// One git for all of them: each commit's header, then its diff against its first
	// parent (a merge's too), without context, of the published files only. The prefixes
	// diffFiles reads are set here: the user's diff.noprefix would drop them.
	args := []string{"-c", "core.quotePath=false", "show", "--no-color", "--no-ext-diff", "--no-renames", "--no-textconv",
		"--src-prefix=a/", "--dst-prefix=b/",
		"--diff-merges=first-parent", "--unified=0", "--format=%x00%H%x1f%ct%x1f%an <%ae>", "--end-of-options"}
	args = append(append(append(args, ids...), "--"), paths...)
	out, err = c.run.GitBounded(ctx, c.dir, c.env, MaxOutsideDiffBytes, args...)
	cut := errors.Is(err, ErrOutputLimit)
	if err != nil && !cut {
		return nil, note, fmt.Errorf("read the commits made since refreshd last saw the branch: %w", err)
	}
	commits, read := parseOutside(out, paths, now, !cut)
	if cut {
		note = addNote(note, fmt.Sprintf("the changes of the %d commits since refreshd last saw the branch are more than %d bytes: read the newest %d", len(ids), MaxOutsideDiffBytes, read))
	}
	if n := pinCount(commits); n > MaxOutsidePins {
		commits = boundPins(commits, MaxOutsidePins)
		note = addNote(note, fmt.Sprintf("those commits changed %d pins: recorded the newest %d", n, MaxOutsidePins))
	}
	return commits, note, nil
}

// addNote adds more to note, "; " between them.
func addNote(note, more string) string {
	if note == "" {
		return more
	}
	return note + "; " + more
}

// pinCount is how many pin changes commits made.
func pinCount(commits []OutsideCommit) int {
	n := 0
	for _, oc := range commits {
		n += len(oc.Changes)
	}
	return n
}

// boundPins keeps the first limit pin changes of commits (newest first): the commit that
// crosses the bound keeps what fits, the older ones are left out.
func boundPins(commits []OutsideCommit, limit int) []OutsideCommit {
	for i := range commits {
		if len(commits[i].Changes) >= limit {
			commits[i].Changes = commits[i].Changes[:limit]
			return commits[:i+1]
		}
		limit -= len(commits[i].Changes)
	}
	return commits
}

// isAncestor reports whether commit a is an ancestor of (or is) commit b.
func (c *clone) isAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := c.git(ctx, "merge-base", "--is-ancestor", "--end-of-options", a, b)
	var ee *ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.Code == 1:
		return false, nil
	}
	return false, err
}

// parseOutside reads git show's output as outside asks for it: for each commit a line
// starting with a NUL, its id, committer time and author separated by 0x1f, then its
// zero-context diff. A NUL of a file's content (git shows a file as text when none is in
// its first 8,000 bytes) is inside a diff line, after its +, - or space: only a NUL that
// starts a line starts a commit. complete is false when the output was cut: its last
// commit is left out. It returns the commits that changed a pin and how many it read.
func parseOutside(out []byte, paths []string, now time.Time, complete bool) (commits []OutsideCommit, read int) {
	chunks := bytes.Split(append([]byte{'\n'}, out...), []byte("\n\x00"))[1:]
	if !complete && len(chunks) > 0 {
		chunks = chunks[:len(chunks)-1]
	}
	for _, chunk := range chunks {
		header, diff, _ := bytes.Cut(chunk, []byte{'\n'})
		fields := strings.SplitN(string(header), "\x1f", 3)
		if len(fields) != 3 || !objectID.MatchString(fields[0]) {
			continue
		}
		oc := OutsideCommit{Commit: fields[0], Author: boundAuthor(fields[2])}
		if sec, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
			oc.At = time.Unix(sec, 0).UTC()
		}
		if oc.At.IsZero() || oc.At.After(now) {
			oc.At = now.UTC() // a date in the future would stay at the top of the history
		}
		for _, f := range diffFiles(diff, paths) {
			oc.Changes = append(oc.Changes, diffPins(f.path, parsePins(f.old.Bytes()), parsePins(f.new.Bytes()))...)
		}
		if len(oc.Changes) > 0 {
			commits = append(commits, oc)
		}
	}
	return commits, len(chunks)
}

type fileDiff struct {
	path     string
	old, new bytes.Buffer // the removed and the added lines
}

// diffFiles splits a zero-context diff into the lines each of paths lost and gained. A
// section of a file not in paths (or whose name git had to quote) is skipped.
func diffFiles(diff []byte, paths []string) []*fileDiff {
	var files []*fileDiff
	var cur *fileDiff
	inHunks := false
	for _, line := range strings.Split(string(diff), "\n") {
		if rest, ok := strings.CutPrefix(line, "diff --git a/"); ok {
			cur, inHunks = nil, false
			for _, p := range paths {
				if rest == p+" b/"+p {
					cur = &fileDiff{path: p}
					files = append(files, cur)
				}
			}
			continue
		}
		if cur == nil {
			continue
		}
		if strings.HasPrefix(line, "@@") {
			inHunks = true
			continue
		}
		if !inHunks || line == "" {
			continue // the "--- a/..." and "+++ b/..." headers come before the first hunk
		}
		switch line[0] {
		case '-':
			cur.old.WriteString(line[1:] + "\n")
		case '+':
			cur.new.WriteString(line[1:] + "\n")
		}
	}
	return files
}

// boundAuthor is an author as recorded: valid UTF-8, control and format characters as
// spaces, at most MaxAuthorBytes (cut at a character, marked with an ellipsis).
func boundAuthor(s string) string { return boundText(s, MaxAuthorBytes) }

// boundText is text from a commit as recorded: valid UTF-8, control and format characters
// (safearg.Hidden: a bidi override would make the history read other than it is) as spaces, at most limit bytes (cut at a character, marked with an ellipsis).
func boundText(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if safearg.Hidden(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= limit {
		return s
	}
	cut := limit - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// publishedPaths are the paths in the branch that sources are copied to.
func publishedPaths(dir string, sources []source) []string {
	paths := make([]string, len(sources))
	for i, s := range sources {
		paths[i] = filepath.ToSlash(filepath.Join(dir, s.Name))
	}
	return slices.Sorted(slices.Values(paths))
}
