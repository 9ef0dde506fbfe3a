package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// TestInstancesAndParamsOverTheSocket: the instances of one plan file are plans of their own
// through the real socket and executor: each triggered by PLAN/INSTANCE (the slash escaped
// in the URL), each recorded apart with its vars and the params given; a bare plan name
// lists the instances; an unknown instance, an unknown param and a refused value are
// refused before any run starts, naming what is wrong.
func TestInstancesAndParamsOverTheSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rel.yaml")
	src := `plan: rel
params:
  upgrade: { default: "true", values: ["true", "false"] }
instances:
  main: { vars: { branch: main } }
  v1-0-test: { vars: { branch: v1-0-test } }
steps:
  - id: say
    run: [sh, -c, 'echo "$0 upgrade=$1 in $PWD"', "{{ .vars.branch }}", "{{ .params.upgrade }}"]
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	plans, err := plan.LoadPlans(file)
	if err != nil {
		t.Fatal(err)
	}
	td := startDaemon(t, dir, Config{Load: plansOf(plans...)})
	c, _ := apitest.Client(t, td.sock)
	bg, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitSocket(t, c)

	st, err := c.Status(bg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range st.Plans {
		names = append(names, p.Plan)
	}
	if strings.Join(names, " ") != "rel/main rel/v1-0-test" {
		t.Errorf("status plans %q, want rel/main rel/v1-0-test", names)
	}

	for _, tc := range []struct {
		plan   string
		params map[string]string
		want   int
		msg    string
	}{
		{"rel", nil, http.StatusNotFound, "plan rel has instances; run one of rel/main, rel/v1-0-test"},
		{"rel/v2", nil, http.StatusNotFound, `no such plan: "rel/v2"`},
		{"rel/main", map[string]string{"upgrad": "true"}, http.StatusBadRequest, `unknown param "upgrad"; params: upgrade`},
		{"rel/main", map[string]string{"upgrade": "maybe"}, http.StatusBadRequest, `param upgrade="maybe": want one of true, false`},
	} {
		_, err := c.TriggerWith(bg, tc.plan, tc.params)
		var apiErr *control.APIError
		// The status carries the kind; the message names what is at fault, without it.
		if !errors.As(err, &apiErr) || apiErr.Code != tc.want || !strings.HasPrefix(err.Error(), tc.msg) && !strings.Contains(err.Error(), ": "+tc.msg) ||
			strings.HasPrefix(err.Error(), "not found") || strings.HasPrefix(err.Error(), "invalid request") {
			t.Errorf("trigger %s %v: %v; want %d naming %q", tc.plan, tc.params, err, tc.want, tc.msg)
		}
	}
	if runs, _ := td.store.Runs("", 0); len(runs) != 0 {
		t.Errorf("%d runs recorded after refused triggers", len(runs))
	}

	output := map[string]string{}
	run := func(name string, params map[string]string) *history.Run {
		t.Helper()
		tr, err := c.TriggerWith(bg, name, params)
		if err != nil {
			t.Fatalf("trigger %s: %v", name, err)
		}
		if strings.Contains(tr.Run, "/") {
			t.Errorf("run id %q holds a slash", tr.Run)
		}
		if err := c.Logs(bg, tr.Run, "", true, func(line string) error { output[name] += line + "\n"; return nil }); err != nil {
			t.Fatal(err)
		}
		r, err := c.Run(bg, tr.Run)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1 := run("rel/main", map[string]string{"upgrade": "false"})
	r2 := run("rel/v1-0-test", nil)
	for _, tc := range []struct {
		r                *history.Run
		plan, upgrade, f string
	}{{r1, "rel/main", "false", "main.out"}, {r2, "rel/v1-0-test", "true", "v1-0-test.out"}} {
		if tc.r.Status != history.StatusSucceeded || tc.r.Plan != tc.plan || tc.r.Params["upgrade"] != tc.upgrade {
			t.Errorf("run %s: %s plan %q params %v; want succeeded, %s, upgrade=%s", tc.r.ID, tc.r.Status, tc.r.Plan, tc.r.Params, tc.plan, tc.upgrade)
		}
		// Each instance has its own default workdir: STATE/work/PLAN_INSTANCE.
		inst := strings.TrimPrefix(tc.plan, "rel/")
		want := inst + " upgrade=" + tc.upgrade + " in " + filepath.Join(dir, "work", "rel_"+inst)
		if !strings.Contains(output[tc.plan], want) {
			t.Errorf("%s printed %q, want %q", tc.plan, output[tc.plan], want)
		}
	}
	for _, name := range []string{"rel/main", "rel/v1-0-test"} {
		if runs, err := c.Runs(bg, name, 0); err != nil || len(runs) != 1 || runs[0].Plan != name {
			t.Errorf("history of %s: %d runs, %v", name, len(runs), err)
		}
	}
}
