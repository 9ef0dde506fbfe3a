package refresh

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/history"
)

var (
	pythons   = []string{"3.11", "3.12"}
	platforms = []string{"linux-amd64", "linux-386"}
	modes     = []string{"constraints", "constraints-source-providers", "constraints-no-providers"}
)

// constraintFiles are the files publish-constraints must put flat into the branch root.
func constraintFiles(pys ...string) []string {
	var out []string
	for _, py := range pys {
		for _, m := range modes {
			out = append(out, m+"-"+py+".txt")
		}
	}
	sort.Strings(out)
	return out
}

func cacheRefs(s *stack, pys ...string) []string {
	var out []string
	for _, py := range pys {
		for _, p := range platforms {
			out = append(out, s.registry()+"/demo/main/ci/python"+py+":cache-"+p)
		}
	}
	return out
}

// checkCaches: every expected cache tag exists in the registry with exactly the digest the
// run recorded, and the run verified it.
func checkCaches(t *testing.T, s *stack, r *history.Run, pys ...string) map[string]string {
	t.Helper()
	got := caches(r)
	digests := map[string]string{}
	for _, ref := range cacheRefs(s, pys...) {
		c, ok := got[ref]
		if !ok {
			t.Errorf("run %s recorded no cache %s", r.ID, ref)
			continue
		}
		inRegistry := s.digest(ref)
		if inRegistry == "" || c.After != inRegistry {
			t.Errorf("%s: registry has %q, history recorded %q", ref, inRegistry, c.After)
		}
		if !c.Verified {
			t.Errorf("%s: not verified by run %s", ref, r.ID)
		}
		digests[ref] = inRegistry
	}
	if len(got) != len(digests) {
		t.Errorf("run %s recorded %d caches, want %d: %v", r.ID, len(got), len(digests), got)
	}
	return digests
}

// pinDiff is the non-comment lines a commit changed, per file, as "-old"/"+new".
func pinDiff(s *stack, from, to string) map[string][]string {
	out := map[string][]string{}
	file := ""
	for _, line := range strings.Split(s.git("diff", "-U0", from, to), "\n") {
		switch {
		case strings.HasPrefix(line, "+++ b/"):
			file = strings.TrimPrefix(line, "+++ b/")
		case strings.HasPrefix(line, "---"), strings.HasPrefix(line, "+++"):
		case strings.HasPrefix(line, "+#"), strings.HasPrefix(line, "-#"):
		case strings.HasPrefix(line, "+"), strings.HasPrefix(line, "-"):
			out[file] = append(out[file], line)
		}
	}
	return out
}

// TestFullFlowThenUpstreamRelease drives the shipped demo plan through the daemon three
// times on one stack: the first refresh (one commit of upgraded constraints, every cache tag
// pushed and verified), a run with nothing new upstream (no commit, caches unchanged), and a
// run after a simulated upstream release (exactly that pin published, caches rebuilt).
func TestFullFlowThenUpstreamRelease(t *testing.T) {
	s := upStack(t)
	seed := s.head()
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"))

	// 1. The first refresh.
	r1 := d.mustSucceed()
	first := checkCaches(t, s, r1, pythons...)
	pub := publishOf(t, r1)
	head := s.head()
	if !pub.Changed || pub.Commit != head {
		t.Fatalf("publish recorded commit %q (changed %v); branch is at %s", pub.Commit, pub.Changed, head)
	}
	if parent := s.git("rev-parse", head+"^"); parent != seed {
		t.Errorf("the new commit's parent is %s, want the seed %s (one new commit)", parent, seed)
	}
	if files := strings.Fields(s.git("ls-tree", "--name-only", head)); !slices.Equal(files, constraintFiles(pythons...)) {
		t.Errorf("branch files %v, want %v (no original-* or diff-*)", files, constraintFiles(pythons...))
	}
	if msg := s.git("log", "-1", "--format=%B", head); !strings.Contains(msg, r1.ID) || !strings.Contains(msg, pub.Summary) {
		t.Errorf("commit message %q names neither run %s nor summary %q", msg, r1.ID, pub.Summary)
	}
	for _, f := range constraintFiles(pythons...) {
		// MODE-X.Y.txt was exported to files/constraints-X.Y/MODE/ (one directory per export).
		py := strings.TrimSuffix(f[strings.LastIndex(f, "-")+1:], ".txt")
		mode := f[:strings.LastIndex(f, "-")]
		local, err := os.ReadFile(filepath.Join(s.project(), "files", "constraints-"+py, mode, f))
		if err != nil {
			t.Fatal(err)
		}
		if published := s.git("show", head+":"+f); published != strings.TrimSpace(string(local)) {
			t.Errorf("%s on the branch differs from this run's generated file", f)
		}
	}
	// Every pin change the history records is in the commit, and nothing else is.
	diff := pinDiff(s, seed, head)
	n := 0
	for _, c := range pub.Changes {
		if !slices.Contains(diff[c.File], "+"+c.Package+"=="+c.New) {
			t.Errorf("history says %s: %s -> %s; the commit's diff of that file: %v", c.File, c.Package, c.New, diff[c.File])
		}
	}
	for _, lines := range diff {
		for _, l := range lines {
			if strings.HasPrefix(l, "+") {
				n++
			}
		}
	}
	if n == 0 || n != len(pub.Changes) {
		t.Errorf("commit adds %d pins, history records %d changes", n, len(pub.Changes))
	}

	// 2. Nothing new upstream: only "#" headers change, so no commit; caches stay.
	r2 := d.mustSucceed()
	if p := publishOf(t, r2); p.Changed || p.Commit != "" || s.head() != head {
		t.Errorf("unchanged run published: changed %v, commit %q, branch %s (was %s)", p.Changed, p.Commit, s.head(), head)
	}
	for ref, dg := range checkCaches(t, s, r2, pythons...) {
		if dg != first[ref] || caches(r2)[ref].Changed {
			t.Errorf("%s changed on a run with nothing new: %s -> %s", ref, first[ref], dg)
		}
	}

	// 3. An upstream release of httpx: exactly that pin, in the files that list httpx
	// (constraints and constraints-source-providers; no-providers has no provider deps).
	s.release("httpx                     0.28.1")
	r3 := d.mustSucceed()
	pub3 := publishOf(t, r3)
	if !pub3.Changed || pub3.Commit != s.head() || s.git("rev-parse", pub3.Commit+"^") != head {
		t.Fatalf("release run: commit %q on top of %s? branch %s", pub3.Commit, head, s.head())
	}
	var wantChanges []history.PackageChange
	for _, py := range pythons {
		for _, m := range []string{"constraints", "constraints-source-providers"} {
			wantChanges = append(wantChanges, history.PackageChange{File: m + "-" + py + ".txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"})
		}
	}
	got := slices.Clone(pub3.Changes)
	slices.SortFunc(got, func(a, b history.PackageChange) int { return strings.Compare(a.File, b.File) })
	slices.SortFunc(wantChanges, func(a, b history.PackageChange) int { return strings.Compare(a.File, b.File) })
	if !slices.Equal(got, wantChanges) {
		t.Errorf("release run changes %+v, want %+v", got, wantChanges)
	}
	diff3 := pinDiff(s, head, pub3.Commit)
	for _, w := range wantChanges {
		if !slices.Equal(diff3[w.File], []string{"-httpx==0.27.2", "+httpx==0.28.1"}) {
			t.Errorf("%s: commit changed %v, want only httpx 0.27.2 -> 0.28.1", w.File, diff3[w.File])
		}
	}
	if len(diff3) != len(wantChanges) {
		t.Errorf("release commit changed pins in %d files, want %d: %v", len(diff3), len(wantChanges), diff3)
	}
	// The constraint history finds that release through the daemon, newest first: every
	// file's pin, in the release run, with its commit and the sources it was built from;
	// the first run's own httpx pins after it.
	pins, err := d.client().Pins(t.Context(), history.PinQuery{Package: "HTTPX"})
	if err != nil || len(pins) <= len(wantChanges) {
		t.Fatalf("constraint history of httpx: %d pins (%v), want the release's %d and the first run's", len(pins), err, len(wantChanges))
	}
	if p := pins[len(wantChanges)]; p.Run == r3.ID || p.New != "0.27.2" {
		t.Errorf("constraint history of httpx after the release: %+v, want the first run's 0.27.2", p)
	}
	for _, p := range pins[:len(wantChanges)] {
		if p.Run != r3.ID || p.Commit != pub3.Commit || p.Old != "0.27.2" || p.New != "0.28.1" || p.Branch != pub3.Branch || r3.Source != nil && p.Source != r3.Source.Commit {
			t.Errorf("constraint history of httpx: %+v, want run %s commit %s", p, r3.ID, pub3.Commit)
		}
	}
	for ref, dg := range checkCaches(t, s, r3, pythons...) {
		if dg == first[ref] || !caches(r3)[ref].Changed {
			t.Errorf("%s not refreshed after the release: still %s", ref, dg)
		}
	}
}
