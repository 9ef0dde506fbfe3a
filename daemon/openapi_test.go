package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// TestControlAPIMatchesOpenAPI drives every operation of the control API on a real daemon
// (real engine, store and socket) and checks each request and answer against
// daemon/control/openapi.yaml with kin-openapi's openapi3filter: the success answers, the
// error convention (400, 404, 405 with Allow, 409), the log stream's headers with and
// without follow, and the description the daemon serves. It fails if an operation of the
// description was never answered with a success, so the description cannot list what the
// daemon does not serve.
func TestControlAPIMatchesOpenAPI(t *testing.T) {
	dir := t.TempDir()
	echo := parsePlan(t, dir, "echo", "plan: echo\nschedule: \"0 3 1 1 *\"\nsteps:\n  - id: say\n    run: [sh, -c, \"echo one; sleep 0.2; echo two\"]\n")
	slow := parsePlan(t, dir, "slow", "plan: slow\nsteps:\n  - id: wait\n    run: [sleep, \"30\"]\n")
	// A run that records everything a run can hold: a source (a real bare repository),
	// params and values from the tree.
	bare := bareRepo(t, dir)
	src := parsePlan(t, dir, "src", `plan: src
workdir: `+filepath.Join(dir, "src-work")+`
params: { ref: { default: main } }
env: { GIT_CONFIG_GLOBAL: /dev/null, GIT_CONFIG_NOSYSTEM: "1" }
steps:
  - id: checkout
    checkout: { repo: `+bare+`, ref: "{{ .params.ref }}" }
  - id: versions
    needs: [checkout]
    run: [sh, -c, 'cat versions.json']
    outputs: { vars: { python: {} } }
  - { id: label, needs: [versions], run: [echo, "{{ .source.commit }} {{ join .vars.python \" \" }}"] }
`)
	td := startDaemon(t, dir, Config{Load: plansOf(echo, slow, src), Version: "test"})
	c, checked := apitest.Client(t, td.sock)
	waitSocket(t, c)
	ctx := t.Context()

	// The constraint history holds a pin a run published and one changed outside refreshd
	// (no plan, no run, an author), so the answer is checked with both in it.
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	if err := td.store.SaveRun(&history.Run{ID: "pub-1", Plan: "echo", Trigger: history.TriggerManual, Start: at, End: at, Status: history.StatusSucceeded,
		Steps: []history.Step{{Instance: "publish", Status: history.StatusSucceeded, End: at, Publish: &history.Publish{
			Repo: "/srv/c.git", Branch: "constraints-main", Commit: "c0ffee", Changed: true,
			Changes: []history.PackageChange{{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"}},
			Outside: []history.OutsideCommit{{Commit: "0a7517de", Author: "Jane <j@example.com>", At: at.Add(-time.Hour),
				Changes: []history.PackageChange{{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.0", New: "0.27.2"}}}}}}}}); err != nil {
		t.Fatal(err)
	}
	if pins, err := c.Pins(ctx, history.PinQuery{Package: "httpx"}); err != nil || len(pins) != 2 || !pins[1].Outside || pins[1].Run != "" {
		t.Errorf("constraints: %+v %v, want the run's pin and the outside one", pins, err)
	}
	if r, err := c.Run(ctx, "pub-1"); err != nil || len(r.Steps) != 1 || len(r.Steps[0].Publish.Outside) != 1 {
		t.Errorf("run pub-1: %+v %v, want its publish with the commit found outside refreshd", r, err)
	}

	tr := triggerAndFollow(t, c, "echo", "say | one\nsay | two")
	if err := c.Logs(ctx, tr.Run, "say", false, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Run(ctx, tr.Run); err != nil || r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %+v %v", tr.Run, r, err)
	}
	str, err := c.Trigger(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Logs(ctx, str.Run, "", true, func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Run(ctx, str.Run); err != nil || r.Status != history.StatusSucceeded || r.Source == nil || len(r.Vars) != 1 || r.Params["ref"] != "main" {
		t.Fatalf("run %s: %+v %v; want succeeded with a source, vars and params", str.Run, r, err)
	}
	if _, err := c.Runs(ctx, "echo", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Runs(ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	long, err := c.Trigger(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *control.APIError
	if _, err := c.Trigger(ctx, "slow"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusConflict {
		t.Errorf("second trigger of a running plan: %v, want 409", err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, long.Run); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, "no-such-run"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusNotFound {
		t.Errorf("cancel of an unknown run: %v, want 404", err)
	}
	if _, err := c.Trigger(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusNotFound {
		t.Errorf("trigger of an unknown plan: %v, want 404", err)
	}
	if _, err := c.Run(ctx, "no-such-run"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusNotFound {
		t.Errorf("unknown run: %v, want 404", err)
	}
	if _, err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}

	// Requests generated from the description itself: every path, method and parameter,
	// valid and invalid (see apitest.Generate); each answer is checked against the
	// description by the client, and its status against what the request calls for.
	hc, rawChecked := apitest.HTTPClient(t, td.sock)
	spec, err := apitest.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := apitest.Generate(spec.Doc, map[string]string{"plan": "echo", "id": tr.Run})
	if err != nil {
		t.Fatal(err)
	}
	for _, gc := range cases {
		want := []int{gc.Want}
		if gc.Want == 0 {
			want = validAnswer(gc)
		}
		req, err := gc.Request()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatalf("%s: %v", gc, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !slices.Contains(want, resp.StatusCode) {
			t.Errorf("%s: %d, want %v: %s", gc, resp.StatusCode, want, body)
		}
		if resp.StatusCode == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", gc)
		}
	}
	t.Logf("%d requests generated from openapi.yaml", len(cases))
	// The answers the description promises in the cases an outside check found broken: a
	// finished run cannot be cancelled (409, not 404); a step the run does not have is 404
	// (not 200 and an empty body), for the live stream of a run that just ended too; an
	// empty path segment is 404 with the error body (never a redirect); a trigger with JSON
	// params in a body is refused (400), not run with the plan's defaults.
	for _, r := range []struct {
		method, path string
		want         int
		body         string // sent as application/json when not empty
	}{
		{"POST", "/v1/runs/" + tr.Run + "/cancel", 409, ""},
		{"GET", "/v1/runs/" + tr.Run + "/logs?step=nosuch", 404, ""},
		{"POST", "/v1/runs//cancel", 404, ""},
		{"GET", "/v1/plans", 200, ""},
		{"POST", "/v1/plans/echo/run", 400, `{"params": {"ref": "v2"}}`},
	} {
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req, _ := http.NewRequestWithContext(ctx, r.method, "http://refreshd"+r.path, body)
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Errorf("%s %s (body %q): %d, want %d: %s", r.method, r.path, r.body, resp.StatusCode, r.want, answer)
		}
	}
	if msg := cancelMessage(ctx, c, tr.Run); !strings.Contains(msg, "has already ended (succeeded)") || strings.HasPrefix(msg, "conflict") {
		t.Errorf("cancel of a finished run says %q; want how it ended, without the API's category", msg)
	}

	answered := map[string]bool{}
	for _, ch := range []*apitest.Checked{checked, rawChecked} {
		for op := range ch.Ops() {
			if f := strings.Fields(op); len(f) == 3 && strings.HasPrefix(f[2], "2") {
				answered[f[0]+" "+f[1]] = true
			}
		}
	}
	for path, item := range spec.Doc.Paths.Map() {
		for method := range item.Operations() {
			if !answered[method+" "+path] {
				t.Errorf("%s %s is in openapi.yaml but the test never got a success from it", method, path)
			}
		}
	}
	t.Logf("checked against openapi.yaml: %v %v", checked.Ops(), rawChecked.Ops())
}

// validAnswer is the status a valid generated request calls for, given the daemon's state
// in TestControlAPIMatchesOpenAPI: plan echo (no params; it runs in a moment) and its
// finished run.
func validAnswer(c apitest.Case) []int {
	switch c.Op {
	case "trigger":
		if c.Query.Has("param") {
			return []int{http.StatusBadRequest} // echo declares no param
		}
		return []int{http.StatusOK, http.StatusConflict} // 409 while the last trigger runs
	case "cancel":
		return []int{http.StatusConflict} // the run has ended
	case "logs":
		if c.Query.Has("step") {
			return []int{http.StatusNotFound} // the run has no such step
		}
	}
	return []int{http.StatusOK}
}

func cancelMessage(ctx context.Context, c *control.Client, id string) string {
	err := c.Cancel(ctx, id)
	if err == nil {
		return ""
	}
	return err.Error()
}

// triggerAndFollow starts a run of planName, as run --wait does, follows its live lines to
// the end and checks them against want.
func triggerAndFollow(t *testing.T, c *control.Client, planName, want string) *control.Triggered {
	t.Helper()
	tr, err := c.Trigger(t.Context(), planName)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	if err := c.Logs(t.Context(), tr.Run, "", true, func(l string) error { lines = append(lines, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("followed lines of %s: %q, want %q", tr.Run, got, want)
	}
	return tr
}

// bareRepo makes a bare repository in dir whose main holds versions.json, and returns its
// path.
func bareRepo(t *testing.T, dir string) string {
	t.Helper()
	bare, work := filepath.Join(dir, "src.git"), filepath.Join(dir, "src-clone")
	testkit.Git(t, dir, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	testkit.Git(t, dir, "clone", "--quiet", bare, work)
	if err := os.WriteFile(filepath.Join(work, "versions.json"), []byte(`{"python": ["3.11", "3.12"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Git(t, work, "add", "-A")
	testkit.Git(t, work, "commit", "--quiet", "-m", "versions")
	testkit.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	return bare
}
