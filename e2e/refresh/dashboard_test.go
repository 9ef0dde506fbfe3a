package refresh

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/testkit/browser"
)

// ArtifactsEnv names the directory the browser test saves its screenshots in (default: the
// test's temporary directory, removed after it).
const ArtifactsEnv = "REFRESHD_E2E_ARTIFACTS"

func artifacts(t *testing.T) string {
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string, full bool) {
	t.Helper()
	action := chromedp.CaptureScreenshot()
	if full {
		action = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// TestDashboardInBrowser runs the demo on the real stack with the dashboard on, follows a
// step's output live in headless Chromium while the step runs, then checks the run's page
// in the browser's DOM against the run record and the registry: one timeline bar per step
// instance, the two platforms' bars overlapping in time on different nodes, the four cache
// tags with the registry's digests, the constraints commit and its package changes. The
// screenshots go to $REFRESHD_E2E_ARTIFACTS.
func TestDashboardInBrowser(t *testing.T) {
	s := upStack(t)
	// The bound of the whole browser part: the demo run takes about 10 s on an idle 2-core
	// machine, minutes when other test packages load the cores (4 on a load of 30).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := browser.Start(t, ctx)
	addr := testkit.FreeAddr(t)
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"), "--http", addr)
	web := "http://" + addr
	out := artifacts(t)

	runID := appearsLive(t, ctx, b, d, web+"/", "demo/main")
	followLive(t, ctx, b, d, web, runID, out)
	run := ended(t, ctx, d, runID)
	if run.Status != history.StatusSucceeded {
		logFailed(t, run)
		t.Fatalf("run %s: %s: %s\n%s", run.ID, run.Status, run.Reason, describe(run))
	}

	if err := chromedp.Do(b, chromedp.Navigate(web+"/runs/"+run.ID), chromedp.WaitVisible(chromedp.ID("tl"))); err != nil {
		t.Fatalf("open the run's page: %v", err)
	}
	checkTimeline(t, b, run)
	checkCacheRows(t, b, s, run)
	checkConstraints(t, b, run)
	screenshot(t, b, out, "run-full.png", true)
	// The picture in docs/operations.md: the top of the page (summary, timeline, the first cache tags).
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 1560)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, b, out, "run.png", false)

	// A phone's width: the page reflows (no horizontal scroll of the page itself).
	err := chromedp.Do(b, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(web+"/runs/"+run.ID), chromedp.WaitVisible(chromedp.ID("tl")))
	if err != nil {
		t.Fatal(err)
	}
	widths, err := chromedp.Run(b, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
	if err != nil {
		t.Fatal(err)
	}
	if scrollW, clientW := widths[0], widths[1]; scrollW > clientW {
		t.Errorf("at 390 px the run page is %d px wide: it scrolls sideways", scrollW)
	}
	screenshot(t, b, out, "run-phone.png", false)
	if err := chromedp.Do(b, chromedp.ResetViewport(), chromedp.Navigate(web+"/")); err != nil {
		t.Fatal(err)
	}
	plans, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plans, "demo") || !strings.Contains(plans, "0 3 * * *") {
		t.Errorf("plans page:\n%s", plans)
	}
	screenshot(t, b, out, "plans.png", false)
}

// appearsLive opens page (idle: nothing runs), marks the document, starts a run of plan
// and waits for a link to it to appear on the page: the page's script, told by the
// stream of run changes, swapped in the page's new content. The mark still being there
// shows no reload happened (a reload makes a new document), and nothing but the script
// could have changed the page: it carries no meta refresh while idle.
func appearsLive(t *testing.T, ctx context.Context, b context.Context, d *daemon, page, plan string) string {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`main[data-live-state="open"]`))); err != nil {
		t.Fatalf("open %s and follow its run changes: %v", page, err)
	}
	if _, err := chromedp.Run(b, chromedp.Evaluate[string](`window.__marker = "before the run"`)); err != nil {
		t.Fatal(err)
	}
	if refresh, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('meta[http-equiv="refresh"]').length`)); err != nil || refresh != 0 {
		t.Fatalf("the idle page %s has %d meta refresh (%v)", page, refresh, err)
	}
	began := time.Now()
	tr, err := d.client().Trigger(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	id := tr.Run
	link := fmt.Sprintf(`main a[href=%q]`, "/runs/"+url.PathEscape(id))
	if err := chromedp.Do(b, chromedp.WaitVisible(chromedp.CSS(link))); err != nil {
		t.Fatalf("run %s did not appear on %s: %v", id, page, err)
	}
	state, err := chromedp.Run(b, chromedp.Evaluate[[]string](`[String(window.__marker), document.querySelector("main").dataset.liveUpdates || "0"]`))
	if err != nil {
		t.Fatal(err)
	}
	if state[0] != "before the run" {
		t.Fatalf("%s was reloaded to show run %s (the mark set before it is %q)", page, id, state[0])
	}
	t.Logf("run %s appeared on %s after %s without a reload (%s content swaps)", id, page, time.Since(began).Round(time.Millisecond), state[1])
	return id
}

// ended waits for run id to end and returns its record.
func ended(t *testing.T, ctx context.Context, d *daemon, id string) *history.Run {
	t.Helper()
	var run *history.Run
	testkit.WaitFor(t, "run "+id+" to end", time.Until(deadline(ctx)), func() bool {
		r, err := d.client().Run(ctx, id)
		if err == nil && r.Status != history.StatusRunning {
			run = r
			return true
		}
		return false
	})
	return run
}

// followLive opens the log page of a step while it runs and checks that its output arrives
// over the live stream before the step ends, and that, once it has ended, the page holds the
// whole log file, without a reload. Steps end fast on a warm machine: it tries each running
// step in turn until one is caught running.
func followLive(t *testing.T, ctx context.Context, b context.Context, d *daemon, web, runID, out string) {
	t.Helper()
	tried := map[string]bool{}
	deadline := time.Now().Add(50 * time.Second)
	for time.Now().Before(deadline) {
		r, err := d.client().Run(ctx, runID)
		if err != nil { // not started yet
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var st *history.Step
		for i := range r.Steps {
			s := &r.Steps[i]
			if s.Status == history.StatusRunning && len(s.Attempts) > 0 && s.Attempts[len(s.Attempts)-1].Log != "" && !tried[s.Instance] {
				st = s
				break
			}
		}
		if st == nil {
			if r.Status != history.StatusRunning {
				t.Fatalf("run %s ended (%s) before any step was caught running; tried %v", runID, r.Status, tried)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		tried[st.Instance] = true
		if caught := followStep(t, ctx, b, d, web, runID, st.Instance, st.Attempts[len(st.Attempts)-1].N, out); caught {
			return
		}
	}
	t.Fatalf("no step of run %s was caught running with live output (tried %v)", runID, tried)
}

func followStep(t *testing.T, ctx context.Context, b context.Context, d *daemon, web, runID, instance string, n int, out string) bool {
	t.Helper()
	u := web + "/log?" + url.Values{"run": {runID}, "step": {instance}, "attempt": {fmt.Sprint(n)}}.Encode()
	if err := chromedp.Do(b, chromedp.Navigate(u), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.notReloaded = true`)(ctx, tg)
		return err
	})); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	type state struct {
		Lines     int    `json:"lines"`
		Ended     bool   `json:"ended"`
		Status    string `json:"status"`
		Same      bool   `json:"same"`
		Streaming bool   `json:"streaming"`
	}
	read := func() state {
		s, err := chromedp.Run(b, chromedp.Evaluate[state](`(() => {
			const pre = document.getElementById("log"), st = document.getElementById("live-status");
			const text = pre.textContent;
			return {lines: text === "" ? 0 : text.replace(/\n$/, "").split("\n").length,
				ended: pre.getAttribute("data-ended") === "1", status: st ? st.textContent : "",
				same: window.notReloaded === true, streaming: pre.hasAttribute("data-events")};
		})()`))
		if err != nil {
			t.Fatalf("read the log page: %v", err)
		}
		return s
	}
	caught := false
	// A step lasts seconds on an idle machine, but minutes under load: wait up to the test's bound.
	for ; ctx.Err() == nil; time.Sleep(30 * time.Millisecond) {
		s := read()
		if !s.Same {
			t.Fatalf("the log page of %s reloaded itself", instance)
		}
		if !s.Streaming {
			t.Logf("%s had ended when its page was made; trying another step", instance)
			return false
		}
		if s.Ended {
			break
		}
		if !caught && s.Lines > 0 && strings.HasPrefix(s.Status, "Following") {
			// The lines on the page came over the stream (the script cleared the page when it
			// connected); is the step still running now that they are shown?
			r, err := d.client().Run(ctx, runID)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range r.Steps {
				if st.Instance == instance && st.Status == history.StatusRunning {
					caught = true
					t.Logf("%s: %d lines shown live while the step ran", instance, s.Lines)
					screenshot(t, b, out, "log-live.png", false)
				}
			}
		}
	}
	s := read()
	if !s.Ended {
		t.Fatalf("the live log of %s did not end within the test's bound (status %q)", instance, s.Status)
	}
	if !caught {
		t.Logf("%s ended before a line was shown live; trying another step", instance)
		return false
	}
	// Everything the step wrote (all its attempts) reached the page.
	text, err := chromedp.Run(b, chromedp.TextContent(chromedp.ID("log")))
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.client().Run(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	for _, a := range step(t, r, instance).Attempts {
		b, err := os.ReadFile(a.Log)
		if err != nil {
			t.Fatal(err)
		}
		file.Write(b)
	}
	if strings.TrimRight(text, "\n") != strings.TrimRight(file.String(), "\n") {
		t.Errorf("the followed log of %s differs from its attempts' log files:\n--- page\n%s\n--- files\n%s", instance, text, file.String())
	}
	return true
}

type bar struct {
	Instance, Node, Start, End, Lane string
	Left, Right                      float64
}

func checkTimeline(t *testing.T, b context.Context, run *history.Run) {
	t.Helper()
	bars, err := chromedp.Run(b, chromedp.Evaluate[[]bar](`[...document.querySelectorAll("#tl g.bar")].map(g => {
		const r = g.querySelector("rect.span").getBoundingClientRect();
		return {Instance: g.dataset.instance, Node: g.dataset.node, Start: g.dataset.start, End: g.dataset.end,
			Lane: g.closest("section.lane").dataset.node, Left: r.left, Right: r.right};
	})`))
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, s := range run.Steps {
		want = append(want, s.Instance)
	}
	byInstance := map[string]bar{}
	for _, br := range bars {
		got = append(got, br.Instance)
		byInstance[br.Instance] = br
		if br.Lane != br.Node {
			t.Errorf("bar %s of node %q drawn in lane %q", br.Instance, br.Node, br.Lane)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Errorf("timeline bars %q, want one per step instance %q", got, want)
	}
	// Each Python's platforms are built on their own nodes, and the platforms run in
	// parallel: some linux/amd64 bar overlaps some linux/386 bar, in time (the recorded
	// spans) and on the screen (the drawn bars). Which pair overlaps depends on the nodes'
	// speed: each platform builds one Python at a time.
	overlap := ""
	for _, py := range pythons {
		amd := byInstance["refresh-cache[python="+py+"][linux/amd64]"]
		if amd.Node == "" || byInstance["refresh-cache[python="+py+"][linux/386]"].Node == "" ||
			amd.Node == byInstance["refresh-cache[python="+py+"][linux/386]"].Node {
			t.Errorf("python %s: platforms built on nodes %q and %q, want two different nodes", py, amd.Node, byInstance["refresh-cache[python="+py+"][linux/386]"].Node)
		}
		for _, py386 := range pythons {
			i386 := byInstance["refresh-cache[python="+py386+"][linux/386]"]
			inTime := amd.Start < i386.End && i386.Start < amd.End
			onScreen := amd.Left < i386.Right && i386.Left < amd.Right
			if inTime != onScreen {
				t.Errorf("python %s amd64 and python %s 386: overlap in time %v but on screen %v (%+v, %+v)", py, py386, inTime, onScreen, amd, i386)
			}
			if inTime && onScreen && amd.Lane != i386.Lane {
				overlap = fmt.Sprintf("python %s linux/amd64 on %s and python %s linux/386 on %s", py, amd.Lane, py386, i386.Lane)
			}
		}
	}
	if overlap == "" {
		t.Errorf("no linux/amd64 bar overlaps a linux/386 bar: the platforms did not build in parallel\n%+v", bars)
	} else {
		t.Logf("bars overlapping in parallel lanes: %s", overlap)
	}
}

func checkCacheRows(t *testing.T, b context.Context, s *stack, run *history.Run) {
	t.Helper()
	type cacheRow struct{ Ref, Digest, Verified string }
	rows, err := chromedp.Run(b, chromedp.Evaluate[[]cacheRow](`[...document.querySelectorAll("table.caches tr.cache")].map(tr => ({
		Ref: tr.dataset.ref, Digest: (tr.querySelector("td code.digest") || {}).textContent || "",
		Verified: tr.cells[3].textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	sha := regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	refs := cacheRefs(s, pythons...)
	if len(rows) != len(refs) {
		t.Errorf("%d cache tags on the page, want %d: %+v", len(rows), len(refs), rows)
	}
	for _, row := range rows {
		if !slices.Contains(refs, row.Ref) {
			t.Errorf("unexpected cache tag %s", row.Ref)
			continue
		}
		if !sha.MatchString(row.Digest) || row.Digest != s.digest(row.Ref) {
			t.Errorf("%s: page shows digest %q, registry has %q", row.Ref, row.Digest, s.digest(row.Ref))
		}
		if !strings.Contains(row.Verified, "verified") {
			t.Errorf("%s: %q, want verified", row.Ref, row.Verified)
		}
	}
}

func checkConstraints(t *testing.T, b context.Context, run *history.Run) {
	t.Helper()
	p := publishOf(t, run)
	if p.Commit == "" || len(p.Changes) == 0 {
		t.Fatalf("the first run on a fresh stack published no change: %+v", p)
	}
	commit, err := chromedp.Run(b, chromedp.TextContent(chromedp.CSS("section.publish code.commit")))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := chromedp.Run(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll("section.publish tr.change")].map(tr =>
		[...tr.cells].map(c => c.textContent).join(" "))`))
	if err != nil {
		t.Fatal(err)
	}
	if commit != p.Commit {
		t.Errorf("page shows commit %q, the run made %q", commit, p.Commit)
	}
	var want []string
	for _, c := range p.Changes {
		kind := "upgraded"
		switch {
		case c.Old == "":
			kind = "added"
		case c.New == "":
			kind = "removed"
		}
		want = append(want, fmt.Sprintf("%s %s %s %s %s", c.File, c.Package, kind, c.Old, c.New))
	}
	if strings.Join(changes, "\n") != strings.Join(want, "\n") {
		t.Errorf("constraints changes on the page:\n%s\nwant (the run's record; the sample only upgrades):\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
