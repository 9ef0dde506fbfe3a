package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/teststack"
	"github.com/refreshd/refreshd/plan"
)

// TestSkipIfTagsOutsidePushes: BuildKit registry-cache tags pushed by someone else (buildctl
// exporting a registry cache to a real registry, never through refreshd), watched by a
// skip_if tags condition over both tags. The run is skipped only once every watched tag was
// pushed (a new digest seen) within the window; a push to only some of them, a tag refreshd
// has seen only one digest of, or pushes older than the window all make the run refresh.
func TestSkipIfTagsOutsidePushes(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	node := teststack.StartBuildkitd(t, "outside")
	refs := map[string]string{}
	for _, py := range []string{"3.11", "3.12"} {
		refs[py] = fmt.Sprintf("%s/ci/python%s:cache-linux-amd64", reg.Host, py)
	}
	pushes := 0
	// push exports a new cache to the tag of py, as another CI would: a build of a context
	// with content never built before, so the cache manifest's digest changes.
	push := func(py string) {
		t.Helper()
		pushes++
		dir := teststack.ScratchContext(t, map[string]string{"stamp": fmt.Sprintf("%s push %d %d", py, pushes, time.Now().UnixNano())})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "buildctl", "--addr", node.Endpoint, "build", "--frontend", "dockerfile.v0",
			"--local", "context="+dir, "--local", "dockerfile="+dir, "--opt", "platform=linux/amd64",
			"--export-cache", "type=registry,ref="+refs[py]+",mode=max")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("outside push to %s: %v\n%s", refs[py], err, out)
		}
	}

	dir := t.TempDir()
	e, st := newRegistryEngine(t, dir)
	marker := filepath.Join(dir, "refreshed")
	load := func(within string) *plan.Graph {
		t.Helper()
		p, err := plan.Parse(filepath.Join(dir, "plan.yaml"), []byte(`plan: cache
vars: { python: ["3.11", "3.12"] }
skip_if:
  - tags:
      refs: ["`+reg.Host+`/ci/python{{ .python }}:cache-linux-amd64"]
      matrix: { python: "{{ .vars.python }}" }
      within: `+within+`
steps:
  - { id: refresh, run: [touch, `+marker+`] }
`))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Warnings) != 0 {
			t.Fatalf("warnings for a tags condition: %v", p.Warnings)
		}
		g, err := plan.Expand(p)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	// run runs the plan and checks whether it was skipped, with the reason and one warning
	// containing the given texts ("" for no warning).
	run := func(name string, g *plan.Graph, wantSkip bool, reason, warning string) {
		t.Helper()
		os.Remove(marker)
		r, err := e.Run(t.Context(), g, RunSpec{Trigger: history.TriggerSchedule})
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(marker)
		switch {
		case wantSkip && (r.Status != history.StatusSkipped || statErr == nil):
			t.Errorf("%s: run %s %q (step ran: %v), want skipped", name, r.Status, r.Reason, statErr == nil)
		case !wantSkip && (r.Status != history.StatusSucceeded || statErr != nil):
			t.Errorf("%s: run %s %q (step ran: %v), want a refresh", name, r.Status, r.Reason, statErr == nil)
		}
		if !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: reason %q, want it to contain %q", name, r.Reason, reason)
		}
		if warning == "" && len(r.Warnings) > 0 || warning != "" && (len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], warning)) {
			t.Errorf("%s: warnings %q, want one containing %q", name, r.Warnings, warning)
		}
	}
	hour, short := load("1h"), load("2s")

	push("3.11")
	push("3.12")
	run("first look", hour, false, "", "refreshd has seen only one digest of "+refs["3.11"]+", "+refs["3.12"])
	push("3.11")
	run("push to one tag of two", hour, false, "", "refreshd has seen only one digest of "+refs["3.12"])
	push("3.12")
	run("every tag pushed since the last look", hour, true, "skip_if: all 2 tags pushed within 1h0m0s", "")

	time.Sleep(2100 * time.Millisecond)
	run("pushes older than the window", short, false, "", "")
	push("3.11")
	run("a fresh push to one tag, the other old", short, false, "", "")
	push("3.11")
	push("3.12")
	run("a fresh push to every tag", short, true, "skip_if: all 2 tags pushed within 2s", "")

	// The record: each tag's digest is the registry's, with when refreshd saw it change.
	tags, err := st.Tags()
	if err != nil {
		t.Fatal(err)
	}
	for py, ref := range refs {
		tag := tags[ref]
		if tag.Digest == "" || tag.ChangedBy.IsZero() || !tag.ChangedAfter.Before(tag.ChangedBy) {
			t.Errorf("python %s: tag record %+v", py, tag)
		}
	}
}
