package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/refreshd/refreshd/internal/testkit"
)

// otherClone is someone else's clone of the fixture's remote, pushing to the constraints
// branch between refreshd's publishes.
type otherClone struct {
	t   *testing.T
	dir string
}

// seenFixture is a fixture whose seed refreshd has published once (unchanged), so it has
// seen the branch: what others push from now on is outside refreshd.
func seenFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
	if _, err := Publish(testCtx(t), f.options()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) other(t *testing.T) *otherClone {
	o := &otherClone{t: t, dir: t.TempDir()}
	testkit.Git(t, o.dir, "clone", "--quiet", "--branch", branch, f.remote, ".")
	return o
}

// commit writes name and commits it as author, returning the commit.
func (o *otherClone) commit(name, data, author string) string {
	o.t.Helper()
	testkit.Git(o.t, o.dir, "pull", "--quiet", "--ff-only")
	writeFile(o.t, filepath.Join(o.dir, name), data)
	testkit.Git(o.t, o.dir, "add", name)
	testkit.Git(o.t, o.dir, "-c", "user.name="+author, "-c", "user.email=human@example.com",
		"commit", "--quiet", "--author", author+" <human@example.com>", "-m", "edit "+name)
	return testkit.Git(o.t, o.dir, "rev-parse", "HEAD")
}

func (o *otherClone) push(args ...string) {
	o.t.Helper()
	testkit.Git(o.t, o.dir, append([]string{"push", "--quiet"}, append(args, "origin", "HEAD:refs/heads/"+branch)...)...)
}

// Someone else pushes a pin change between two publishes: the second publish reports it as
// made outside refreshd, with its commit, author and date and only its pin changes; it never
// reports refreshd's own commit, a commit that touched no published file, or (on the next
// publish) the same commit again. The first publish from a state directory reports nothing:
// what came before it was never seen.
func TestPublishSeesCommitsMadeOutside(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", []string{"apache-beam==2.51.0", "boto3==1.28.0", "celery==5.3.1", "requests==2.31.0"}, []string{"requests==2.31.0"})
	res, err := Publish(testCtx(t), f.options())
	if err != nil || !res.Changed || len(res.Outside) != 0 || res.OutsideNote != "" {
		t.Fatalf("first publish: %+v %v, want a change and nothing from outside", res, err)
	}

	other := f.other(t)
	before := time.Now().Add(-time.Second)
	human := other.commit("constraints-3.11.txt", constraints("2025-06-01T05:00:00Z", "apache-beam==2.51.0", "boto3==1.28.0", "celery==5.4.0", "httpx==0.28.1", "requests==2.31.0"), "Jane Human")
	other.commit("README.md", "edited by a human\n", "Jane Human")
	other.push()

	f.generate(t, "2025-06-02T02:00:00Z", []string{"apache-beam==2.52.0", "boto3==1.28.0", "celery==5.4.0", "httpx==0.28.1", "requests==2.31.0"}, []string{"requests==2.31.0"})
	res, err = Publish(testCtx(t), f.options())
	if err != nil || !res.Changed || res.Summary != "1 upgraded in 1 file" {
		t.Fatalf("second publish: %+v %v", res, err)
	}
	if len(res.Outside) != 1 {
		t.Fatalf("outside = %+v, want exactly the human's pin change", res.Outside)
	}
	oc := res.Outside[0]
	if oc.Commit != human || oc.Author != "Jane Human <human@example.com>" || oc.At.Before(before.Truncate(time.Second)) || oc.At.After(time.Now()) {
		t.Errorf("outside commit = %+v, want %s by Jane Human, dated now", oc, human)
	}
	want := []Change{
		{File: "constraints-3.11.txt", Package: "celery", Old: "5.3.1", New: "5.4.0", Kind: Upgraded},
		{File: "constraints-3.11.txt", Package: "httpx", New: "0.28.1", Kind: Added},
	}
	if !reflect.DeepEqual(oc.Changes, want) {
		t.Errorf("outside changes = %+v\nwant %+v", oc.Changes, want)
	}

	f.generate(t, "2025-06-03T02:00:00Z", []string{"apache-beam==2.53.0", "boto3==1.28.0", "celery==5.4.0", "httpx==0.28.1", "requests==2.31.0"}, []string{"requests==2.31.0"})
	res, err = Publish(testCtx(t), f.options())
	if err != nil || !res.Changed || len(res.Outside) != 0 || res.OutsideNote != "" {
		t.Errorf("third publish: %+v %v, want refreshd's own commit and the human's, seen before, not reported", res, err)
	}
}

// A push that raced refreshd's is an outside commit too, reported by the publish that
// fetched it on its retry.
func TestPublishSeesTheCommitItRacedWith(t *testing.T) {
	f := seenFixture(t)
	other := f.other(t)
	var raced string
	o := f.options()
	o.Runner = &racingRunner{t: t, races: 1, other: func(int) {
		raced = other.commit("constraints-no-providers-3.11.txt", constraints("x", "requests==2.32.0"), "Racer")
		other.push()
	}}
	f.generate(t, "2025-06-02T02:00:00Z", []string{"apache-beam==2.51.0", "boto3==1.28.0", "celery==5.3.1", "requests==2.31.0"}, []string{"requests==2.32.0"})
	res, err := Publish(testCtx(t), o)
	if err != nil || res.PushAttempts != 2 {
		t.Fatalf("publish: %+v %v, want it pushed on the second attempt", res, err)
	}
	if len(res.Outside) != 1 || res.Outside[0].Commit != raced || res.Outside[0].Author != "Racer <human@example.com>" {
		t.Errorf("outside = %+v, want the racing commit %s", res.Outside, raced)
	}
}

// The look at outside commits is bounded: more than MaxOutsideCommits since the last
// publish reads the newest MaxOutsideCommits and says so; a rewritten branch is said too.
func TestPublishOutsideCommitsBounded(t *testing.T) {
	f := seenFixture(t)
	other := f.other(t)
	n := MaxOutsideCommits + 10
	for i := 1; i <= n; i++ {
		writeFile(t, filepath.Join(other.dir, "constraints-no-providers-3.11.txt"), constraints("x", fmt.Sprintf("requests==2.%d.0", 40+i)))
		testkit.Git(t, other.dir, "commit", "--quiet", "-am", fmt.Sprint("bump ", i))
	}
	other.push()
	var out strings.Builder
	o := f.options()
	o.Output = &out
	res, err := Publish(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("commits made outside refreshd: more than %d commits", MaxOutsideCommits)) {
		t.Errorf("the publish's output does not say the look was cut short:\n%s", out.String())
	}
	if len(res.Outside) != MaxOutsideCommits || !strings.Contains(res.OutsideNote, fmt.Sprintf("more than %d commits", MaxOutsideCommits)) {
		t.Fatalf("outside: %d commits, note %q; want the newest %d and a note", len(res.Outside), res.OutsideNote, MaxOutsideCommits)
	}
	if c := res.Outside[0].Changes; len(c) != 1 || c[0].New != fmt.Sprintf("2.%d.0", 40+n) {
		t.Errorf("newest outside commit changes %+v, want requests -> 2.%d.0", c, 40+n)
	}

	// Someone rewrites the branch: a new root commit with other pins, force-pushed.
	testkit.Git(t, other.dir, "checkout", "--quiet", "--orphan", "rewritten")
	writeFile(t, filepath.Join(other.dir, "constraints-no-providers-3.11.txt"), constraints("x", "requests==9.9.9"))
	testkit.Git(t, other.dir, "commit", "--quiet", "-am", "rewrite")
	other.push("--force")
	res, err = Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	// A root commit's pins are all added.
	if !strings.Contains(res.OutsideNote, "rewritten") || len(res.Outside) != 1 || !strings.Contains(fmt.Sprint(res.Outside[0].Changes), "+ requests 9.9.9") {
		t.Errorf("after a rewrite: outside %+v, note %q", res.Outside, res.OutsideNote)
	}
}

// An author is hostile text: what git gives is recorded without control characters, as
// valid UTF-8, cut at a character boundary.
func TestBoundAuthor(t *testing.T) {
	long := strings.Repeat("é", MaxAuthorBytes)
	for _, tc := range []struct{ in, want string }{
		{"Jane <j@x>", "Jane <j@x>"},
		{"\x1b[31mred\x1b[0m <a@b>", " [31mred [0m <a@b>"},
		{"bad \xff utf8", "bad   utf8"},
		// Bidi and other format characters would make the history read other than it is.
		{"Eve \u202e>moc.liam@evil<", "Eve  >moc.liam@evil<"},
		{"a\u2066b\u2067c\u2068d\u2069e\u200ef\u200fg\u202ah\u200bi", "a b c d e f g h i"},
		{`"><script>alert(1)</script>`, `"><script>alert(1)</script>`}, // escaped where shown
		{long, long[:MaxAuthorBytes-3-1] + "…"},
	} {
		got := boundAuthor(tc.in)
		if got != tc.want || len(got) > MaxAuthorBytes || !utf8.ValidString(got) {
			t.Errorf("boundAuthor(%q) = %q (%d bytes), want %q", tc.in, got, len(got), tc.want)
		}
	}
}

// parseOutside reads only the published files' sections, pins in removed and added lines,
// a pip option or comment line starting with "--" or "++" included as content, and a
// commit date in the future as now.
func TestParseOutside(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	a, b, c := strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 64)
	out := "\x00" + a + "\x1f1700000000\x1fA <a@x>\n\n" +
		"diff --git a/c.txt b/c.txt\nindex 1..2 100644\n--- a/c.txt\n+++ b/c.txt\n@@ -2,2 +2,2 @@\n-httpx==0.27.2\n---index-url x\n+httpx==0.28.1\n+++extra\n" +
		"diff --git a/other.txt b/other.txt\n--- a/other.txt\n+++ b/other.txt\n@@ -1 +1 @@\n-flask==1\n+flask==2\n" +
		"\x00" + b + "\x1f99999999999\x1fB <b@x>\n\ndiff --git a/c.txt b/c.txt\nnew file mode 100644\n--- /dev/null\n+++ b/c.txt\n@@ -0,0 +1 @@\n+a==1\n" +
		"\x00" + c + "\x1f1700000000\x1fC\n\ndiff --git a/c.txt b/c.txt\n@@ -1 +1 @@\n-# header 1\n+# header 2\n"
	got, read := parseOutside([]byte(out), []string{"c.txt"}, now, true)
	want := []OutsideCommit{
		{Commit: a, Author: "A <a@x>", At: time.Unix(1700000000, 0).UTC(), Changes: []Change{{File: "c.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1", Kind: Upgraded}}},
		{Commit: b, Author: "B <b@x>", At: now, Changes: []Change{{File: "c.txt", Package: "a", New: "1", Kind: Added}}},
	}
	if !reflect.DeepEqual(got, want) || read != 3 {
		t.Errorf("parseOutside: %d commits read\n got %+v\nwant %+v", read, got, want)
	}
}

// A push the remote refused leaves refreshd's commit off the branch: the next publish
// neither calls the branch rewritten nor reports anything but what others pushed since.
func TestPublishOutsideAfterRefusedPush(t *testing.T) {
	f := seenFixture(t)
	hook := filepath.Join(f.remote, "hooks", "pre-receive")
	writeFile(t, hook, "#!/bin/sh\necho protected >&2\nexit 1\n")
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	f.generate(t, "2025-06-02T02:00:00Z", []string{"apache-beam==2.51.0", "boto3==1.28.0", "celery==5.3.1", "requests==2.31.0"}, []string{"requests==2.31.0"})
	if _, err := Publish(testCtx(t), f.options()); err == nil {
		t.Fatal("publish succeeded through a refusing hook")
	}
	os.Remove(hook)
	other := f.other(t)
	human := other.commit("constraints-3.11.txt", constraints("x", "apache-beam==2.50.0", "boto3==1.28.0", "celery==5.3.2", "requests==2.31.0"), "Jane Human")
	other.push()
	res, err := Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if res.OutsideNote != "" || len(res.Outside) != 1 || res.Outside[0].Commit != human {
		t.Errorf("after a refused push: outside %+v, note %q; want only the human commit %s, no rewrite", res.Outside, res.OutsideNote, human)
	}
}

// manyPins is n pins, pkg0==1.0.0 to pkgN-1==1.0.0, each line padded to width bytes.
func manyPins(n, width int) []string {
	pins := make([]string, n)
	for i := range pins {
		pins[i] = fmt.Sprintf("pkg%0*d==1.0.0", width-len("pkg==1.0.0"), i)
	}
	return pins
}

// What others push is hostile in size too: a commit that changes thousands of pins is
// recorded with the newest MaxOutsidePins of them, and diffs bigger than
// MaxOutsideDiffBytes are not read past it (git is stopped there); the newer commits
// whose diffs fit are, and the note says both.
func TestPublishOutsideCommitsSizeBounded(t *testing.T) {
	f := seenFixture(t)
	other := f.other(t)
	small := other.commit("constraints-no-providers-3.11.txt", constraints("x", "requests==2.32.0"), "Jane Human")
	other.commit("constraints-3.11.txt", constraints("x", manyPins(MaxOutsidePins+1000, 20)...), "Mallory")
	other.push()
	res, err := Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if n := pinCount(res.Outside); n != MaxOutsidePins || !strings.Contains(res.OutsideNote, fmt.Sprintf("pins: recorded the newest %d", MaxOutsidePins)) {
		t.Errorf("%d pin changes recorded of %d commits (note %q), want %d and a note", n, len(res.Outside), res.OutsideNote, MaxOutsidePins)
	}
	for _, oc := range res.Outside {
		if oc.Commit == small {
			t.Errorf("the older commit %s is recorded past the bound", small)
		}
	}

	// A diff of more than MaxOutsideDiffBytes, then a small commit on top of it.
	lines := MaxOutsideDiffBytes/32 + 1000
	other.commit("constraints-3.11.txt", constraints("x", manyPins(lines, 32)...), "Mallory")
	newest := other.commit("constraints-no-providers-3.11.txt", constraints("x", "requests==2.33.0"), "Jane Human")
	other.push()
	res, err = Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("the changes of the 2 commits since refreshd last saw the branch are more than %d bytes: read the newest 1", MaxOutsideDiffBytes)
	if len(res.Outside) != 1 || res.Outside[0].Commit != newest || res.OutsideNote != want {
		t.Errorf("after a huge diff: outside %d commits, note %q; want only %s and the note %q", len(res.Outside), res.OutsideNote, newest, want)
	}
}

// The look at outside commits reads git's diff whatever the daemon user's git configuration
// says about diffs: prefixes (diff.noprefix, diff.mnemonicPrefix), colours, an external diff
// program, renames, quoted paths.
func TestPublishSeesOutsideCommitsWhateverTheUsersGitConfig(t *testing.T) {
	for _, config := range []string{
		"[diff]\n\tnoprefix = true\n",
		"[diff]\n\tmnemonicPrefix = true\n",
		"[color]\n\tui = always\n",
		"[diff]\n\texternal = /bin/false\n\trenames = copies\n[core]\n\tquotePath = true\n",
	} {
		t.Run(strings.Fields(config)[1], func(t *testing.T) {
			f := newFixture(t)
			f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
			gitconfig := filepath.Join(t.TempDir(), "gitconfig")
			writeFile(t, gitconfig, config)
			o := f.options()
			o.Env = append(o.Env, "GIT_CONFIG_GLOBAL="+gitconfig)
			if _, err := Publish(testCtx(t), o); err != nil {
				t.Fatal(err)
			}
			other := f.other(t)
			human := other.commit("constraints-no-providers-3.11.txt", constraints("x", "requests==2.32.0"), "Jane Human")
			other.push()
			res, err := Publish(testCtx(t), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Outside) != 1 || res.Outside[0].Commit != human || res.OutsideNote != "" {
				t.Errorf("with %q: outside %+v, note %q; want the human's commit %s", config, res.Outside, res.OutsideNote, human)
			}
		})
	}
}

// The pins of an outside commit are hostile text too: a version carrying terminal escapes
// or thousands of bytes is recorded, and written to the step's output, without control
// characters and bounded.
func TestPublishOutsidePinTextBounded(t *testing.T) {
	f := seenFixture(t)
	other := f.other(t)
	other.commit("constraints-no-providers-3.11.txt", constraints("x", "requests==2.32.0\x1b]0;pwned\x07\x1b[2J", "boto3=="+strings.Repeat("9", 5000)), "Mallory")
	other.push()
	var out strings.Builder
	o := f.options()
	o.Output = &out
	res, err := Publish(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outside) != 1 || len(res.Outside[0].Changes) < 2 {
		t.Fatalf("outside %+v, want one commit changing pins", res.Outside)
	}
	for _, c := range res.Outside[0].Changes {
		for _, s := range []string{c.Package, c.Old, c.New} {
			if len(s) > MaxPinBytes || strings.ContainsFunc(s, unicode.IsControl) {
				t.Errorf("recorded pin change %+v: %q is over %d bytes or holds control characters", c, s, MaxPinBytes)
			}
		}
	}
	if strings.ContainsAny(out.String(), "\x1b\x07") || len(out.String()) > 10_000 {
		t.Errorf("the publish's output holds the commit's escapes or its 5,000-byte version:\n%q", out.String())
	}
}

// A NUL in a published file past git's first 8,000 bytes leaves it text, so the NUL reaches
// git show's output inside a diff line: it must not start a commit of its own there, with
// an id, date and author the file's writer chose, taking the commit's next file's changes.
func TestPublishOutsideCommitNotForgedByContent(t *testing.T) {
	f := seenFixture(t)
	other := f.other(t)
	forged := strings.Repeat("f", 40)
	padding := strings.Repeat("# padding past git's binary check\n", 300)
	// One commit: the file with the NUL, and the next published file (git shows it after).
	writeFile(t, filepath.Join(other.dir, "constraints-3.11.txt"), constraints("x", append(slices.Clone(seedPins), padding+"x\x00"+forged+"\x1f0\x1fRelease Manager <rm@example.org>")...))
	testkit.Git(t, other.dir, "add", "constraints-3.11.txt")
	mallory := other.commit("constraints-no-providers-3.11.txt", constraints("x", "requests==6.6.6"), "Mallory")
	other.push()
	res, err := Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	for _, oc := range res.Outside {
		if oc.Commit == forged || strings.Contains(oc.Author, "Release Manager") {
			t.Errorf("an outside commit forged by a file's content was recorded: %+v", oc)
		}
	}
	if len(res.Outside) != 1 || res.Outside[0].Commit != mallory || res.Outside[0].Author != "Mallory <human@example.com>" {
		t.Errorf("outside %+v, want Mallory's commit %s (requests 6.6.6)", res.Outside, mallory)
	}
}

// failingShow is git, except that its first `git show` fails: a look at outside commits
// that could not read them.
type failingShow struct {
	ExecRunner
	failed bool
}

func (r *failingShow) GitBounded(ctx context.Context, dir string, env []string, limit int, args ...string) ([]byte, error) {
	if !r.failed && slices.Contains(args, "show") {
		r.failed = true
		return nil, errors.New("show failed by the test")
	}
	return r.ExecRunner.GitBounded(ctx, dir, env, limit, args...)
}

// publishWithAFailingLook has someone else push a pin change (human), then publishes with a
// look at outside commits that fails, which must still push and note the failure.
func (f *fixture) publishWithAFailingLook(t *testing.T) (human string, res *Result) {
	t.Helper()
	other := f.other(t)
	human = other.commit("constraints-3.11.txt", constraints("x", "apache-beam==2.50.0", "boto3==1.28.0", "celery==5.4.0", "requests==2.31.0"), "Jane Human")
	other.push()
	f.generate(t, "2025-06-02T02:00:00Z", seedPins, []string{"requests==2.32.0"})
	o := f.options()
	o.Runner = &failingShow{}
	res, err := Publish(testCtx(t), o)
	if err != nil || res.Commit == "" || !strings.Contains(res.OutsideNote, "could not read") {
		t.Fatalf("publish with a failing look: %+v %v; want it pushed, the look's failure noted", res, err)
	}
	return human, res
}

// A look at outside commits that fails, in a publish that then pushes, is made again by the
// next publish: what it could not read is reported then (and refreshd's own commit, pushed
// in between, is not taken for an outside one).
func TestPublishOutsideLookRetriedAfterAFailure(t *testing.T) {
	f := seenFixture(t)
	human, _ := f.publishWithAFailingLook(t)

	f.generate(t, "2025-06-03T02:00:00Z", seedPins, []string{"requests==2.33.0"})
	res, err := Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outside) != 1 || res.Outside[0].Commit != human || res.OutsideNote != "" {
		t.Errorf("the publish after the failed look: outside %+v, note %q; want the human's commit %s, read now", res.Outside, res.OutsideNote, human)
	}
}

// While the look keeps failing, the commits refreshd makes are remembered (madeRefs) at most
// MaxMadeRefs at a time: past that the oldest is forgotten and marked seen, the publish says
// so, and the next look starts from it, reading what others pushed and none of refreshd's own.
func TestPublishCapsCommitsMadeWhileTheLookFails(t *testing.T) {
	f := seenFixture(t)
	dir := clonePath(f.state, Key(f.remote, branch))
	// MaxMadeRefs earlier commits refreshd made while the look failed (pushes the remote
	// refused: off the branch), one a day from 2020 on, oldest first.
	var script strings.Builder
	for i := range MaxMadeRefs {
		fmt.Fprintf(&script, "commit refs/heads/made-earlier\ncommitter refreshd <r@example.com> %d +0000\ndata 7\nmade %02d\n", 1577836800+i*86400, i)
		if i == 0 {
			fmt.Fprintf(&script, "from %s\n", f.seed)
		}
		script.WriteString("\n")
	}
	gitStdin(t, dir, script.String(), "fast-import", "--quiet")
	earlier := strings.Fields(testkit.Git(t, dir, "rev-list", "--reverse", "refs/heads/made-earlier", "^"+f.seed))
	var refs strings.Builder
	for _, id := range earlier {
		fmt.Fprintf(&refs, "create %s%s %s\n", madeRefs, id, id)
	}
	refs.WriteString("delete refs/heads/made-earlier\n")
	gitStdin(t, dir, refs.String(), "update-ref", "--stdin")

	human, res := f.publishWithAFailingLook(t)
	wantNote := fmt.Sprintf("more than %d commits made while the look kept failing: the next look starts from %.12s", MaxMadeRefs, earlier[0])
	if !strings.Contains(res.OutsideNote, wantNote) {
		t.Errorf("note %q; want it to say %q", res.OutsideNote, wantNote)
	}
	made := strings.Fields(testkit.Git(t, dir, "for-each-ref", "--format=%(objectname)", madeRefs))
	want := append(slices.Clone(earlier[1:]), res.Commit)
	slices.Sort(made)
	slices.Sort(want)
	if !slices.Equal(made, want) {
		t.Errorf("%d commits remembered as made; want the newest %d (all but %.12s)", len(made), MaxMadeRefs, earlier[0])
	}
	if seen := testkit.Git(t, dir, "rev-parse", seenRef); seen != earlier[0] {
		t.Errorf("seen %s; want the forgotten commit %s", seen, earlier[0])
	}

	f.generate(t, "2025-06-03T02:00:00Z", seedPins, []string{"requests==2.33.0"})
	res, err := Publish(testCtx(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outside) != 1 || res.Outside[0].Commit != human || res.OutsideNote != "" {
		t.Errorf("the publish after: outside %+v, note %q; want only the human's commit %s", res.Outside, res.OutsideNote, human)
	}
	if left := testkit.Git(t, dir, "for-each-ref", madeRefs); left != "" {
		t.Errorf("made refs left after a look read past them:\n%s", left)
	}
}

// gitStdin runs git args in dir with stdin as its standard input.
func gitStdin(t *testing.T, dir, stdin string, args ...string) {
	t.Helper()
	cmd := testkit.GitCmd(testCtx(t), dir, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
