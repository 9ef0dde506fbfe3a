package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// A param given to a run through the socket equal to a secret, and values the tree gives
// equal to it, appear nowhere unmasked in what the daemon shows: the run's record through
// the API, its live and stored logs (each line names its instance), the dashboard's pages
// (run list, run page, an instance's log), the daemon's own log (the journal's fields), and
// the record of a queued run the daemon dropped.
func TestDaemonMasksSecretsInEveryField(t *testing.T) {
	const secret = "s3cretValue42"
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "token")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := parsePlan(t, dir, "masked", fmt.Sprintf(`plan: masked
workdir: %s
overlap: queue
params:
  tag: { default: "none" }
secrets:
  TOKEN: { file: %s }
steps:
  - id: values
    run: [sh, -c, 'sleep 1; printf "{\"v\": [\"3.11\", \"%%s\"]}" "$0"', "{{ .params.tag }}"]
    outputs: { from: stdout, vars: { v: {} } }
  - id: use
    needs: [values]
    matrix: { v: "{{ .vars.v }}" }
    run: [sh, -c, 'echo "building $0"', "{{ .v }}"]
  - id: token
    secrets: [TOKEN]
    run: [sh, -c, 'test "$TOKEN" = "$0"', "{{ .params.tag }}"]
`, filepath.Join(dir, "work"), secretFile))
	addr := testkit.FreeAddr(t)
	var log testkit.Buffer
	td := startDaemon(t, dir, Config{Load: plansOf(p), HTTPAddr: addr, Version: "test", Logger: slog.New(slog.NewTextHandler(&log, nil))})
	c, _ := apitest.Client(t, td.sock)
	waitSocket(t, c)
	ctx := t.Context()
	tr, err := c.TriggerWith(ctx, "masked", map[string]string{"tag": secret})
	if err != nil {
		t.Fatal(err)
	}
	// A second trigger while it runs waits (overlap: queue); cancelled, the daemon records
	// it without the engine.
	queued, err := c.TriggerWith(ctx, "masked", map[string]string{"tag": secret})
	if err != nil || !queued.Queued {
		t.Fatalf("second trigger: %+v, %v; want it queued", queued, err)
	}
	if err := c.Cancel(ctx, queued.Run); err != nil {
		t.Fatal(err)
	}
	var live []string
	if err := c.Logs(ctx, tr.Run, "", true, func(l string) error { live = append(live, l); return nil }); err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(ctx, tr.Run)
	if err != nil || r.Status != history.StatusSucceeded {
		t.Fatalf("run %s: %+v %v", tr.Run, r, err)
	}
	shown := map[string]string{"live log": strings.Join(live, "\n")}
	if !strings.Contains(shown["live log"], "use[v=***] | building ***") {
		t.Errorf("live log lacks the masked instance's line:\n%s", shown["live log"])
	}
	var stored []string
	if err := c.Logs(ctx, tr.Run, "", false, func(l string) error { stored = append(stored, l); return nil }); err != nil {
		t.Fatal(err)
	}
	shown["stored log"] = strings.Join(stored, "\n")
	runs, err := c.Runs(ctx, "masked", 0)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs: %d, %v; want the run and the dropped one", len(runs), err)
	}
	for _, run := range runs {
		b, _ := json.Marshal(run)
		shown["record of "+run.ID+" ("+string(run.Status)+")"] = string(b)
		if run.Params["tag"] != "***" {
			t.Errorf("run %s (%s) records params %v, want tag=***", run.ID, run.Status, run.Params)
		}
	}
	page := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	shown["run list"] = page("/")
	shown["run page"] = page("/runs/" + url.PathEscape(tr.Run))
	shown["instance log"] = page("/log?run=" + url.QueryEscape(tr.Run) + "&step=" + url.QueryEscape("use[v=***]"))
	if !strings.Contains(shown["run page"], "use[v=***]") || !strings.Contains(shown["instance log"], "building ***") {
		t.Errorf("the pages do not show the masked instance:\n%s\n%s", shown["run page"], shown["instance log"])
	}
	time.Sleep(100 * time.Millisecond) // the run's last log lines
	shown["daemon log"] = log.String()
	for where, text := range shown {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the secret:\n%s", where, text)
		}
	}
}
