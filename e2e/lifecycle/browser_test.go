package lifecycle

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/testkit/browser"
)

// The failing step's error, found once on its row of the run page.
const brokenError = "exit code 37"

// TestDashboardSmallThingsInBrowser opens the dashboard of the refreshd binary in headless
// Chromium and checks, in the browser's DOM and computed styles, what an operator saw wrong:
// an idle page shows a run that starts later (without a reload); "running" is not in the
// failure colour; the log page of a step that ends shows its final status without a reload;
// the run list has a params column; the lane of steps not tied to a node is titled so, in the
// steps table's order; a failed step's error is said once; and a page's live update keeps
// the focused field, what was typed in it and the scroll position. The plan needs only git
// (its constraints go to a bare repository), so every run of it changes the constraint
// history.
func TestDashboardSmallThingsInBrowser(t *testing.T) {
	testkit.Need(t, "git")
	e := newEnv(t)
	remote := filepath.Join(e.dir, "constraints.git")
	testkit.Git(t, "", "init", "--quiet", "--bare", remote)
	e.writePlan("web", `plan: web
params: { ref: { default: main } }
steps:
  - id: gen
    run: [sh, -c, "mkdir -p out && printf 'pkg==%s\n' $(date +%s%N) > out/constraints.txt && echo generated for {{ .params.ref }}"]
  - id: publish
    needs: [gen]
    publish_constraints: { repo: `+remote+`, branch: constraints, files: out/constraints.txt }
  - id: slow
    needs: [publish]
    run: [sh, -c, "for i in $(seq 1 12); do echo line $i; sleep 0.25; done"]
  - id: broken
    needs: [slow]
    run: [sh, -c, "echo about to fail; exit 37"]
`)
	addr := testkit.FreeAddr(t)
	e.start([]string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}, "--http", addr)
	web := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := browser.Start(t, ctx)

	// An idle page: a run started later appears in it, the document the same one.
	if err := chromedp.Do(b, chromedp.Navigate(web+"/"), chromedp.WaitVisible(chromedp.CSS(`main[data-live-state="open"]`))); err != nil {
		t.Fatalf("open the plans page: %v", err)
	}
	evaluate[string](t, b, `window.__mark = "idle"`)
	tr, err := e.client().TriggerWith(ctx, "web", map[string]string{"ref": "v2"})
	if err != nil {
		t.Fatal(err)
	}
	id := tr.Run
	if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`main a[href=%q]`, "/runs/"+url.PathEscape(id))))); err != nil {
		t.Fatalf("run %s did not appear on the idle plans page: %v", id, err)
	}
	if mark := evaluate[string](t, b, `String(window.__mark)`); mark != "idle" {
		t.Errorf("the plans page was reloaded to show run %s", id)
	}

	// While step slow runs: "running" in the run page is never in the failure colour.
	waitStep(t, ctx, e, id, "slow", history.StatusRunning)
	if err := chromedp.Do(b, chromedp.Navigate(web+"/runs/"+url.PathEscape(id)), chromedp.WaitVisible(chromedp.ID("tl"))); err != nil {
		t.Fatal(err)
	}
	colors := evaluate[[]string](t, b, `(() => {
		const bad = getComputedStyle(document.querySelector(".bad") || Object.assign(document.body.appendChild(document.createElement("span")), {className: "bad"})).color;
		const out = [];
		for (const el of document.querySelectorAll("main *")) {
			if (el.children.length === 0 && el.textContent.trim() === "running") {
				out.push(getComputedStyle(el).color === bad ? "red: " + el.outerHTML : "ok");
			}
		}
		return out;
	})()`)
	if len(colors) < 2 || strings.Contains(strings.Join(colors, "\n"), "red") {
		t.Errorf("\"running\" on the page of a running run, in the failure colour or not found: %q", colors)
	}

	// The log page of slow, opened while it runs, shows the step's final status once it ends,
	// without a reload and without asking for one.
	logPage := web + "/log?" + url.Values{"run": {id}, "step": {"slow"}, "attempt": {"1"}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate(logPage)); err != nil {
		t.Fatal(err)
	}
	evaluate[string](t, b, `window.__mark = "log"`)
	if streaming := evaluate[bool](t, b, `document.getElementById("log").hasAttribute("data-events")`); !streaming {
		t.Fatalf("slow had ended before its log page was made: the machine is too slow for this check (uptime)")
	}
	fctx, fcancel := context.WithTimeout(b, 30*time.Second)
	defer fcancel()
	if err := chromedp.Do(fctx, chromedp.WaitVisible(chromedp.CSS(`#live-status[data-final="1"]`))); err != nil {
		t.Fatalf("the log page never showed the final status: %v", err)
	}
	final := evaluate[[]string](t, b, `[document.getElementById("live-status").textContent, document.getElementById("outcome").textContent, String(window.__mark)]`)
	if strings.Contains(final[0], "Reload") || final[0] != "The step has ended: exit code 0." || !strings.HasPrefix(final[1], "exit code 0 · ") || final[2] != "log" {
		t.Errorf("log page after the step ended: status %q, outcome %q, mark %q; want its final status, live", final[0], final[1], final[2])
	}

	run := waitEnded(t, ctx, e, id)
	if run.Status != history.StatusFailed {
		t.Fatalf("run %s: %s, want failed (step broken)", id, run.Status)
	}
	// The run page: the lane of steps not tied to a node, its bars in the steps table's
	// order; the broken step's error once on its row.
	if err := chromedp.Do(b, chromedp.Navigate(web+"/runs/"+url.PathEscape(id)), chromedp.WaitVisible(chromedp.ID("tl"))); err != nil {
		t.Fatal(err)
	}
	type lanes struct {
		Titles []string `json:"titles"`
		Bars   []string `json:"bars"`
		Rows   []string `json:"rows"`
		Broken string   `json:"broken"`
	}
	got := evaluate[lanes](t, b, `(() => ({
		titles: [...document.querySelectorAll("#tl section.lane h3")].map(h => h.textContent),
		bars: [...document.querySelectorAll('#tl section.lane[data-node=""] g.bar')].map(g => g.dataset.instance),
		rows: [...document.querySelectorAll("table.steps tbody tr")].map(tr => tr.querySelector("th").firstChild.textContent),
		broken: [...document.querySelectorAll("table.steps tbody tr")].find(tr => tr.querySelector("th").firstChild.textContent === "broken").innerText,
	}))()`)
	if len(got.Titles) != 1 || got.Titles[0] != "steps not tied to a node" {
		t.Errorf("timeline lanes %q, want one, \"steps not tied to a node\"", got.Titles)
	}
	if strings.Join(got.Bars, " ") != strings.Join(got.Rows, " ") || len(got.Rows) != 4 {
		t.Errorf("bars of the lane in order %q, steps table %q: want the same order", got.Bars, got.Rows)
	}
	if n := strings.Count(got.Broken, brokenError); n != 1 {
		t.Errorf("the broken step's row says its error %d times, want once:\n%s", n, got.Broken)
	}

	// The run list has the params.
	runs := evaluate[[]string](t, b, `fetch("/plans/web").then(r => r.text()).then(html => {
		const doc = new DOMParser().parseFromString(html, "text/html");
		const table = [...doc.querySelectorAll("main table")].find(t => [...t.querySelectorAll("thead th")].some(th => th.textContent === "Params"));
		if (!table) {
			return ["-1", ""];
		}
		const col = [...table.querySelectorAll("thead th")].map(th => th.textContent).indexOf("Params");
		const row = table.querySelector("tbody tr");
		return [String(col), col < 0 || !row ? "" : row.children[col].textContent];
	})`)
	if runs[0] == "-1" || runs[1] != "ref=v2" {
		t.Errorf("the run list: params column %s, first run's params %q; want ref=v2", runs[0], runs[1])
	}

	// A live update keeps the focused field, what was typed in it, and the scroll position:
	// the constraint history, short and scrolled, with "pk" typed in its search field, gets
	// the next run's pins.
	field := chromedp.CSS(`input[name="package"]`)
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 240), chromedp.Navigate(web+"/constraints"),
		chromedp.WaitVisible(chromedp.CSS(`main[data-live-state="open"]`)), chromedp.Click(field), chromedp.SendKeys(field, "pk")); err != nil {
		t.Fatal(err)
	}
	evaluate[string](t, b, `window.__mark = "constraints"`)
	evaluate[int](t, b, `window.scrollTo(0, 60), 0`)
	before := evaluate[int](t, b, `document.querySelectorAll("table.pins tbody tr").length`)
	if y := evaluate[int](t, b, `Math.round(window.scrollY)`); y != 60 {
		t.Fatalf("the constraints page does not scroll to 60 at 240 px high (scrollY %d)", y)
	}
	// Between the two runs someone else pins httpx on the constraints branch: the live
	// update brings it as a change made outside refreshd, with its commit and author.
	other := t.TempDir()
	testkit.Git(t, other, "clone", "--quiet", "--branch", "constraints", remote, ".")
	testkit.Git(t, other, "rm", "--quiet", "constraints.txt")
	if err := os.WriteFile(filepath.Join(other, "constraints.txt"), []byte("httpx==0.28.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Git(t, other, "add", "constraints.txt")
	testkit.Git(t, other, "commit", "--quiet", "-m", "pin httpx", "--author", `Jane "&" Human <jane@example.com>`)
	testkit.Git(t, other, "push", "--quiet", "origin", "HEAD:refs/heads/constraints")
	human := testkit.Git(t, other, "rev-parse", "HEAD")
	tr2, err := e.client().Trigger(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	waitEnded(t, ctx, e, tr2.Run)
	if _, err := chromedp.Run(b, chromedp.Poll[bool](fmt.Sprintf(`document.querySelectorAll("table.pins tbody tr").length > %d`, before),
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the constraints page did not show run %s's pin: %v", tr2.Run, err)
	}
	outside := evaluate[[]string](t, b, `[...document.querySelectorAll("table.pins tbody tr")].filter(tr => tr.querySelector(".outside")).map(tr => tr.innerText)`)
	// The commit replaced the file: pkg removed, httpx added.
	if len(outside) != 2 || !strings.Contains(outside[0]+outside[1], "\thttpx\tadded 0.28.1\t") {
		t.Errorf("rows made outside refreshd on the constraints page: %q; want pkg removed and httpx added by commit %s", outside, human)
	}
	for _, row := range outside {
		if !strings.Contains(row, human[:12]) || !strings.Contains(row, `outside refreshd by Jane "&" Human <jane@example.com>`) {
			t.Errorf("row made outside refreshd %q: want commit %.12s by Jane", row, human)
		}
	}
	type kept struct {
		Name, Value, Mark string
		Y                 int
	}
	k := evaluate[kept](t, b, `({Name: document.activeElement.name || document.activeElement.tagName, Value: document.activeElement.value || "",
		Y: Math.round(window.scrollY), Mark: String(window.__mark)})`)
	if k != (kept{Name: "package", Value: "pk", Y: 60, Mark: "constraints"}) {
		t.Errorf("after the live update: focus on %q holding %q, scrollY %d, mark %q; want the package field holding \"pk\", 60, the same document",
			k.Name, k.Value, k.Y, k.Mark)
	}
}

// evaluate is the value of expression js (a promise is awaited) in the page.
func evaluate[T any](t *testing.T, b context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(b, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitStep waits until step instance of run id has status.
func waitStep(t *testing.T, ctx context.Context, e *env, id, instance string, status history.Status) {
	t.Helper()
	testkit.WaitFor(t, instance+" of "+id+" to be "+string(status), 60*time.Second, func() bool {
		r, err := e.client().Run(ctx, id)
		if err != nil {
			return false
		}
		for _, s := range r.Steps {
			if s.Instance == instance {
				return s.Status == status
			}
		}
		return false
	})
}

// waitEnded waits until run id ends and returns it.
func waitEnded(t *testing.T, ctx context.Context, e *env, id string) *history.Run {
	t.Helper()
	var run *history.Run
	testkit.WaitFor(t, "run "+id+" to end", 90*time.Second, func() bool {
		r, err := e.client().Run(ctx, id)
		if err == nil && r.Status != history.StatusRunning {
			run = r
			return true
		}
		return false
	})
	return run
}

// TestLogPageDroppedFollowerInBrowser: a log page whose live stream the daemon drops (its
// slot needed by other followers of the same client) says it stopped following and asks for
// a reload; it does not say the step ended, nor show the running attempt as its final status.
func TestLogPageDroppedFollowerInBrowser(t *testing.T) {
	e := newEnv(t)
	e.writePlan("long", "plan: long\nsteps:\n  - id: long\n    run: [sh, -c, \"for i in $(seq 1 120); do echo line $i; sleep 0.5; done\"]\n")
	addr := testkit.FreeAddr(t)
	e.start(nil, "--http", addr)
	web := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := browser.Start(t, ctx)
	tr, err := e.client().Trigger(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	defer e.client().Cancel(context.Background(), tr.Run)
	waitStep(t, ctx, e, tr.Run, "long", history.StatusRunning)
	testkit.WaitFor(t, "the step's first attempt", 30*time.Second, func() bool {
		r, err := e.client().Run(ctx, tr.Run)
		return err == nil && len(r.Steps) == 1 && len(r.Steps[0].Attempts) == 1
	})
	logPage := web + "/log?" + url.Values{"run": {tr.Run}, "step": {"long"}, "attempt": {"1"}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate(logPage)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(b, chromedp.Poll[bool](`document.getElementById("live-status").textContent === "Following the output live."`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the log page does not follow the step: %v", err)
	}
	// The daemon's default: 64 streams, 32 a client. The browser's is the client's oldest.
	for range 32 {
		resp, err := http.Get(web + "/events?scope=runs")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
	}
	status, err := chromedp.Run(b, chromedp.Poll[string](`(() => { const s = document.getElementById("live-status").textContent; return s.startsWith("Following") ? null : s; })()`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("the log page's stream was not dropped: %v", err)
	}
	final := evaluate[bool](t, b, `document.getElementById("live-status").hasAttribute("data-final")`)
	if strings.Contains(status, "has ended") || final || !strings.Contains(status, "needed this stream's slot") || !strings.Contains(status, "reload") {
		t.Errorf("log page of a running step whose stream was dropped: status %q (final mark %v); want it to say it stopped following, and to reload", status, final)
	}
}
