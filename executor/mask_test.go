package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// A param value equal to a secret, and values read from the tree equal to it or holding it,
// are masked in every field of the run: its params and vars, its instance ids (the matrix
// values), the log file names and every byte of the state directory (store, journal, logs),
// the engine's log (the daemon log and the journal's step= field). The steps still get the
// real values. Before, the record's params, vars and instance ids held the secret, so did
// the log file names, the logs header, the pages and the journal.
func TestSecretMaskedInEveryField(t *testing.T) {
	t.Parallel()
	const secret = "s3cretValue42"
	e := newEngineT(t, 0)
	dir := t.TempDir()
	secretFile := writeSecret(t, secret+"\n")
	src := fmt.Sprintf(`
plan: masked
workdir: %s
params:
  tag: { default: "none" }
secrets:
  TOKEN: { file: %s }
steps:
  - id: values
    run: [sh, -c, 'printf "{\"v\": [\"3.11\", \"%%s\", \"pre-%%s-post\"]}" "$0" "$0"', "{{ .params.tag }}"]
    outputs: { from: stdout, vars: { v: {} } }
  - id: use
    needs: [values]
    matrix: { v: "{{ .vars.v }}" }
    run: [sh, -c, 'echo "$0" >> used.txt', "{{ .v }}"]
  - id: token
    secrets: [TOKEN]
    run: [sh, -c, 'test "$TOKEN" = "$0"', "{{ .params.tag }}"]
`, dir, secretFile)
	r := e.runSource(t, dir, src, map[string]string{"tag": secret})
	// The steps got the real values.
	if used, _ := os.ReadFile(filepath.Join(dir, "used.txt")); len(strings.Fields(string(used))) != 3 || !strings.Contains(string(used), "pre-"+secret+"-post") {
		t.Errorf("the steps did not get the real values: used.txt %q", used)
	}
	var ids []string
	for _, s := range r.Steps {
		ids = append(ids, s.Instance)
	}
	slices.Sort(ids)
	if want := []string{"token", "use[v=***]", "use[v=3.11]", "use[v=pre-***-post]", "values"}; !slices.Equal(ids, want) {
		t.Errorf("instances %q, want %q", ids, want)
	}
	if r.Params["tag"] != "***" {
		t.Errorf("recorded params %v, want tag=***", r.Params)
	}
	if len(r.Vars) != 1 || !slices.Equal(r.Vars[0].Values, []string{"3.11", "***", "pre-***-post"}) {
		t.Errorf("recorded vars %+v", r.Vars)
	}
	check := func(where, text string) {
		t.Helper()
		if strings.Contains(text, secret) {
			t.Errorf("%s holds the secret", where)
		}
	}
	files := 0
	filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		check("the name "+path, path)
		if d.Type().IsRegular() {
			files++
			data, _ := os.ReadFile(path)
			check(path, string(data))
		}
		return nil
	})
	if files < 5 {
		t.Errorf("%d files in the state directory: want the store and a log per step", files)
	}
	check("the engine's log", e.logs.String())
	check("Config.Output", e.out.String())
	b, _ := json.Marshal(r)
	check("the run record", string(b))
}

// A secret of 1 to 3 characters fails the run before it starts, naming the secret: masked,
// it would hide those letters in every name and line; unmasked, it would show.
func TestShortSecretFailsTheRun(t *testing.T) {
	t.Parallel()
	secretFile := writeSecret(t, " ab \n")
	e := newEngineT(t, 0)
	p := &plan.Plan{Name: "test", Secrets: map[string]plan.Secret{"TOKEN": {File: secretFile}}}
	r := e.run(t, context.Background(), graph(p, step("a", "true")))
	if r.Status != history.StatusFailed || !strings.Contains(r.Reason, "secret TOKEN") || !strings.Contains(r.Reason, "2 characters long, too short to mask (at least 4)") {
		t.Errorf("run %s: %q", r.Status, r.Reason)
	}
	if s := stepOf(t, r, "a"); s.Status != history.StatusSkipped || len(s.Attempts) != 0 {
		t.Errorf("step ran or was not skipped: %+v", s)
	}
}

// A skip_if tags condition over values from the tree equal to a secret: its decision is
// recorded and logged with the refs masked, and so are the registry client's own log lines
// (the URLs it asks). The tag store keeps the real refs: it must look them up again.
func TestSkipIfDecisionMasked(t *testing.T) {
	t.Parallel()
	const secret = "s3cretValue42"
	e := newEngineT(t, 0)
	reg := httptest.NewServer(http.NotFoundHandler()) // a registry without the tags
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	e.cfg.Tools.PlainHTTPRegistries = []string{host}
	dir := t.TempDir()
	secretFile := writeSecret(t, secret+"\n")
	src := fmt.Sprintf(`
plan: masked
workdir: %s
secrets:
  TOKEN: { file: %s }
skip_if:
  - tags:
      refs: ["%s/ci:{{ .v }}"]
      matrix: { v: "{{ .vars.v }}" }
      within: 1h
steps:
  - id: values
    secrets: [TOKEN]
    run: [sh, -c, 'printf "{\"v\": [\"3.11\", \"%%s\"]}" "$TOKEN"']
    outputs: { from: stdout, vars: { v: {} } }
  - id: use
    needs: [values]
    matrix: { v: "{{ .vars.v }}" }
    run: ["true"]
`, dir, secretFile, host)
	r := e.runSource(t, dir, src, nil)
	if len(r.Freshness) != 1 || !strings.Contains(r.Freshness[0].Why, "missing in the registry: "+host+"/ci:3.11, "+host+"/ci:***") {
		t.Errorf("recorded skip_if decisions %+v, want the missing tags, masked", r.Freshness)
	}
	b, _ := json.Marshal(r)
	for where, text := range map[string]string{"the run record": string(b), "the engine's log": e.logs.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("%s holds the secret:\n%s", where, text)
		}
	}
	if !strings.Contains(e.logs.String(), "/v2/ci/manifests/***") {
		t.Errorf("the registry client's requests are not in the log, masked:\n%s", e.logs.String())
	}
}

// runSource runs the plan src (written as if in dir) with params, and wants it to succeed.
func (e *engineT) runSource(t *testing.T, dir, src string, params map[string]string) *history.Run {
	t.Helper()
	plans, err := plan.ParsePlans(filepath.Join(dir, "masked.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := plans[0].ResolveParams(params)
	if err != nil {
		t.Fatal(err)
	}
	g, err := plan.ExpandRun(plans[0], resolved)
	if err != nil {
		t.Fatal(err)
	}
	r := e.run(t, context.Background(), g)
	if r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %s", r.Status, r.Reason)
	}
	return r
}

// writeSecret writes a secret file holding data and returns its path.
func writeSecret(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
