package refresh

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/internal/testkit/browser"
)

// TestDashboardAfterThreeNights runs three nights of demo/main (one Python) through a
// daemon with the dashboard on, and reads the questions of the morning after in headless
// Chromium: night 1 after a release added to the tree's package index (httpx 0.28.1),
// night 2 with nothing new in the sources (the caches reused, as they were) after a release
// manager pinned httpx back to 0.28.0 by hand on the constraints branch (night 2 finds
// that commit, outside refreshd, and puts 0.28.1 back), night 3 with the gate made
// stricter than what the generator gives, started while the plan's page is open (it fails
// at check-constraints and publishes nothing). Then the constraints page, searched by
// package name through its form, finds night 1's httpx change with its commit and run, and
// the hand-made one as outside refreshd with its commit and author;
// the caches page shows for every tag of the plan the registry's own digest
// (Docker-Content-Digest), pushed by night 1 and dated within it; the plan's page has one
// strip cell per run and, in each step's chart, one point per run that ran the step.
// With $REFRESHD_E2E_ARTIFACTS set, it saves the README's screenshots of the three pages
// there (dashboard-constraints.png, dashboard-caches.png, dashboard-trends.png).
func TestDashboardAfterThreeNights(t *testing.T) {
	s := upStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s.onePython()
	s.release("httpx                     0.28.1")
	addr := testkit.FreeAddr(t)
	d := startDaemon(t, s, filepath.Join(s.Dir, "state"), "--http", addr)
	web := "http://" + addr
	b := browser.Start(t, ctx)
	out := artifacts(t)

	// Night 1: the release reaches the constraints and rebuilds the caches.
	r1 := d.mustSucceed()
	pub := publishOf(t, r1)
	var httpx *history.PackageChange
	for i, c := range pub.Changes {
		if c.Package == "httpx" && c.New == "0.28.1" {
			httpx = &pub.Changes[i]
		}
	}
	if !pub.Changed || httpx == nil {
		t.Fatalf("night 1 published %+v, want httpx 0.28.1 among its changes", pub)
	}
	// Between the nights someone pins httpx back to 0.28.0 by hand on the constraints
	// branch: night 2's publish finds that commit (outside refreshd) and puts 0.28.1 back.
	human := s.pinByHand(httpx.File, "httpx==0.28.1", "httpx==0.28.0")
	// Night 2: nothing new in the sources; every cache tag is the one night 1 pushed.
	r2 := d.mustSucceed()
	if p2 := publishOf(t, r2); len(p2.Outside) != 1 || p2.Outside[0].Commit != human {
		t.Errorf("night 2's publish found outside refreshd %+v, want the hand-made commit %s", p2.Outside, human)
	}
	for ref, c := range caches(r2) {
		if c.After == "" || c.After != caches(r1)[ref].After {
			t.Errorf("night 2 changed cache %s: %+v after night 1's %+v", ref, c, caches(r1)[ref])
		}
	}
	// Night 3: a gate stricter than what the generator gives, so it fails.
	s.editPlan("exit !(header && pins > 0)", "exit !(header && pins > 100000)")
	if _, err := d.client().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	head := s.head()
	r3 := ended(t, ctx, d, appearsLive(t, ctx, b, d, web+"/plans/demo/main", "demo/main"))
	if r3.Status != history.StatusFailed || !strings.Contains(r3.Reason, "check-constraints") || s.head() != head {
		t.Fatalf("night 3: %s %q, branch %s -> %s; want failed at the gate, nothing published\n%s", r3.Status, r3.Reason, head, s.head(), describe(r3))
	}

	checkHistoryPage(t, b, web, out, pub, httpx, r1, human)
	checkCachesPage(t, b, s, web, out, r1)
	checkTrends(t, b, web, out, []*history.Run{r1, r2, r3})
}

// checkHistoryPage searches the constraints page for httpx through its form, as a person
// would, and finds night 1's change with its commit and run, and the change made by hand
// between the nights as made outside refreshd, with its commit and author.
func checkHistoryPage(t *testing.T, b context.Context, web, out string, pub *history.Publish, c *history.PackageChange, r1 *history.Run, human string) {
	t.Helper()
	err := chromedp.Do(b, chromedp.Navigate(web+"/constraints"), chromedp.WaitVisible(chromedp.CSS(`input[name="package"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="package"]`), "httpx"), chromedp.Submit(chromedp.CSS(`form.search`)))
	if err != nil {
		t.Fatalf("search the constraints page: %v", err)
	}
	waitJS(t, b, "the search's page", `location.search === "?package=httpx&branch=" && document.readyState === "complete" && !!document.querySelector('main[data-live-state="open"]')`)
	type row struct{ Package, Change, Commit, Run, Branch string }
	rows, err := chromedp.Run(b, chromedp.Evaluate[[]row](`[...document.querySelectorAll("table.pins tbody tr")].filter(tr => tr.cells.length == 8).map(tr => ({
		Package: tr.cells[2].textContent.trim(), Change: tr.cells[3].textContent.trim(),
		Commit: tr.cells[5].querySelector("code").title, Run: tr.cells[6].textContent.trim(), Branch: tr.cells[1].textContent.trim()}))`))
	if err != nil {
		t.Fatal(err)
	}
	found, byHand := false, false
	for _, r := range rows {
		if r.Package != "httpx" {
			t.Errorf("a search for httpx shows %+v", r)
		}
		if r.Run == r1.ID && r.Commit == pub.Commit && r.Branch == pub.Branch && strings.HasSuffix(r.Change, c.New) {
			found = true
		}
		if r.Run == "outside refreshd by Release Manager <rm@sample-project.example.org>" && r.Commit == human && r.Change == "0.28.1 → 0.28.0" {
			byHand = true
		}
	}
	if !byHand {
		t.Errorf("the constraints page searched for httpx shows %+v; want httpx 0.28.1 -> 0.28.0 made outside refreshd in commit %s", rows, human)
	}
	if !found {
		t.Errorf("the constraints page searched for httpx shows %+v; want httpx %s -> %s in commit %s of run %s", rows, c.Old, c.New, pub.Commit, r1.ID)
	}
	screenshot(t, b, out, "dashboard-constraints.png", false)
}

// checkCachesPage reads every tag of demo/main on the caches page: the digest shown is
// the one the registry answers for the tag, and its last change is night 1's push, dated
// within night 1.
func checkCachesPage(t *testing.T, b context.Context, s *stack, web, out string, r1 *history.Run) {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Navigate(web+"/caches"), chromedp.WaitVisible(chromedp.CSS(`table.caches`))); err != nil {
		t.Fatal(err)
	}
	type row struct{ Plan, Ref, Digest, Changed, Age, PushedBy string }
	rows, err := chromedp.Run(b, chromedp.Evaluate[[]row](`[...document.querySelectorAll("table.caches tbody tr")].filter(tr => tr.cells.length == 8).map(tr => {
		const code = tr.cells[2].querySelector("code"), time = tr.cells[3].querySelector("time");
		return {Plan: tr.cells[0].textContent.trim(), Ref: tr.cells[1].textContent.trim(), Digest: code ? code.title : "",
			Changed: time ? time.getAttribute("datetime") : "", Age: tr.cells[4].textContent.trim(), PushedBy: tr.cells[5].textContent.trim()};
	})`))
	if err != nil {
		t.Fatal(err)
	}
	want := caches(r1)
	seen := 0
	for _, r := range rows {
		if r.Plan != "demo/main" {
			continue
		}
		seen++
		reg := s.digest(r.Ref)
		if reg == "" || r.Digest != reg {
			t.Errorf("caches page: %s shows digest %q, the registry answers %q", r.Ref, r.Digest, reg)
		}
		c, ok := want[r.Ref]
		if !ok {
			continue // a tag the plan watches but night 1 did not build (none in the demo)
		}
		if c.After != reg {
			t.Errorf("night 1 recorded %s at %s, the registry has %s", r.Ref, c.After, reg)
		}
		at, err := time.Parse(time.RFC3339Nano, r.Changed)
		if err != nil || r.PushedBy != r1.ID || at.Before(r1.Start.Add(-time.Second)) || at.After(r1.End.Add(time.Second)) || r.Age == "" {
			t.Errorf("caches page: %s changed %q (%v) by %q, age %q; want night 1 (%s, %s to %s)", r.Ref, r.Changed, err, r.PushedBy, r.Age, r1.ID, r1.Start, r1.End)
		}
	}
	if seen == 0 || seen < len(want) {
		t.Errorf("caches page shows %d tags of demo/main, night 1 recorded %d: %+v", seen, len(want), rows)
	}
	screenshot(t, b, out, "dashboard-caches.png", false)
}

// checkTrends reads the plan's page: one strip cell per run, oldest first, and in each
// step's chart one point per run in which the step ran (from the run records).
func checkTrends(t *testing.T, b context.Context, web, out string, runs []*history.Run) {
	t.Helper()
	if err := chromedp.Do(b, chromedp.Navigate(web+"/plans/demo/main"), chromedp.WaitVisible(chromedp.CSS(`section.trends`))); err != nil {
		t.Fatal(err)
	}
	strip, err := chromedp.Run(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll("ol.strip a")].map(a => a.getAttribute("href"))`))
	if err != nil {
		t.Fatal(err)
	}
	var wantStrip []string
	ran := map[string]int{} // step id -> runs in which one of its instances ran
	for _, r := range runs {
		wantStrip = append(wantStrip, "/runs/"+url.PathEscape(r.ID))
		steps := map[string]bool{}
		for _, st := range r.Steps {
			if !st.Start.IsZero() && !st.End.IsZero() {
				steps[strings.SplitN(st.Instance, "[", 2)[0]] = true
			}
		}
		for id := range steps {
			ran[id]++
		}
	}
	if fmt.Sprint(strip) != fmt.Sprint(wantStrip) {
		t.Errorf("trend strip %v, want %v", strip, wantStrip)
	}
	type chart struct {
		Step string
		Dots int
	}
	charts, err := chromedp.Run(b, chromedp.Evaluate[[]chart](`[...document.querySelectorAll("table.step-trends tbody tr")].map(tr => ({
		Step: tr.querySelector("th").firstChild.textContent.trim(), Dots: tr.querySelectorAll("svg circle.dot").length}))`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range charts {
		got[c.Step] = c.Dots
	}
	if fmt.Sprint(got) != fmt.Sprint(ran) {
		t.Errorf("points per step chart %v, want one per run that ran the step %v", got, ran)
	}
	if ran["checkout"] != len(runs) {
		t.Errorf("checkout ran in %d of %d runs", ran["checkout"], len(runs))
	}
	if err := chromedp.Do(b, chromedp.EmulateViewport(1280, 1000)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, b, out, "dashboard-trends.png", false)
}

// waitJS waits (up to 30 s) until expr is true in the page; a page being navigated to
// answers errors until it is there.
func waitJS(t *testing.T, b context.Context, what, expr string) {
	t.Helper()
	var last error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		last = err
	}
	t.Fatalf("%s: %s is still not true after 30 s (%v)", what, expr, last)
}
