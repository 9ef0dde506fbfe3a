package web

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

func newServer(t testing.TB, src Source, pageSize int) *Server {
	t.Helper()
	s, err := New(Config{Source: src, Version: "refreshd v1.2.3", Now: func() time.Time { return fixtureNow }, PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t testing.TB, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

// TestPagesGolden renders every page of the fixture and compares it with its golden file
// (go test ./daemon/web -update rewrites them).
func TestPagesGolden(t *testing.T) {
	h := newServer(t, fixture(t, 3), 2).Handler()
	tests := []struct{ name, target string }{
		{"plans", "/"},
		{"runs-page1", "/plans/demo"},
		{"runs-page2", "/plans/demo?page=2"},
		{"run", "/runs/demo-20261128T030000.000Z-a1b2"},
		{"run-running", "/runs/airflow-main-20261128T092900.000Z-ffff"},
		{"log-retried", "/log?run=demo-20261128T030000.000Z-a1b2&step=build-ci-images%5Bpython%3D3.11%5D&attempt=1"},
		{"log-running", "/log?run=airflow-main-20261128T092900.000Z-ffff&step=build-ci-images%5Bpython%3D3.9%5D"},
		{"not-found", "/runs/nope"},
		{"constraints", "/constraints"},
		{"constraints-httpx", "/constraints?package=HTTP&branch=constraints-main"},
		{"caches", "/caches"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, h, http.MethodGet, tt.target)
			if tt.name != "not-found" && w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", tt.target, w.Code, w.Body)
			}
			testkit.Golden(t, filepath.Join("testdata", tt.name+".html"), w.Body.String())
		})
	}
}

func TestStatusCodes(t *testing.T) {
	h := newServer(t, fixture(t, 3), 2).Handler()
	const run = "demo-20261128T030000.000Z-a1b2"
	tests := []struct {
		method, target string
		code           int
		body           string // a substring the answer must hold
	}{
		{"GET", "/", 200, "airflow-main"},
		{"HEAD", "/", 200, ""},
		{"POST", "/", 405, ""},
		{"DELETE", "/runs/" + run, 405, ""},
		{"GET", "/runs/" + run, 200, "Timeline"},
		{"GET", "/runs/no-such-run", 404, "no run &#34;no-such-run&#34; in history"},
		{"GET", "/plans/demo?page=0", 400, "want a page number from 1"},
		{"GET", "/plans/demo?page=x", 400, "want a page number from 1"},
		{"GET", "/plans/demo?page=9", 404, "there is no page 9"},
		{"GET", "/plans/nothing", 200, "No run of this plan"},
		{"GET", "/log?run=" + run + "&step=nope", 404, "has no step instance"},
		{"GET", "/log?run=" + run + "&step=notify-release", 404, "has no attempt"},
		{"GET", "/log?run=" + run + "&step=build-ci-images%5Bpython%3D3.11%5D&attempt=7", 404, "has no attempt &#34;7&#34;"},
		{"GET", "/log?run=" + run + "&step=provision%5Bdemo_cache%5D", 200, "no log file"},
		{"GET", "/log?run=" + run + "&step=build-ci-images%5Bpython%3D3.11%5D&attempt=2&raw=1", 200, "<script>alert(1)</script>"},
		{"GET", "/events?run=no-such-run", 404, ""},
		{"GET", "/static/style.css", 200, ".tl-row"},
		{"GET", "/static/app.js", 200, "EventSource"},
		{"GET", "/static/nope.js", 404, ""},
		{"GET", "/elsewhere", 404, ""},
	}
	for _, tt := range tests {
		w := get(t, h, tt.method, tt.target)
		if w.Code != tt.code {
			t.Errorf("%s %s: %d, want %d\n%s", tt.method, tt.target, w.Code, tt.code, w.Body)
			continue
		}
		if !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: answer lacks %q:\n%s", tt.method, tt.target, tt.body, w.Body)
		}
		if tt.code < 400 && tt.method == "GET" && !strings.HasPrefix(tt.target, "/static/") {
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("%s: Content-Security-Policy %q", tt.target, csp)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", tt.target)
			}
		}
	}
}

// TestLogTextEscaped: a log line that looks like markup is shown as text on the page.
func TestLogTextEscaped(t *testing.T) {
	h := newServer(t, fixture(t, 0), 0).Handler()
	body := get(t, h, "GET", "/log?run=demo-20261128T030000.000Z-a1b2&step=build-ci-images%5Bpython%3D3.11%5D&attempt=2").Body.String()
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("log markup not escaped:\n%s", body)
	}
}

// TestAssetsReferenced: every /static/ file a page links to is served, and nothing is
// loaded from anywhere else.
func TestAssetsReferenced(t *testing.T) {
	h := newServer(t, fixture(t, 3), 0).Handler()
	ref := regexp.MustCompile(`(?:src|href)="([^"#]*)"`)
	for _, target := range []string{"/", "/plans/demo", "/runs/demo-20261128T030000.000Z-a1b2"} {
		body := get(t, h, "GET", target).Body.String()
		for _, m := range ref.FindAllStringSubmatch(body, -1) {
			u := m[1]
			if strings.Contains(u, "//") {
				t.Errorf("%s links outside the dashboard: %s", target, u)
			}
			if strings.HasPrefix(u, "/static/") {
				if w := get(t, h, "GET", u); w.Code != 200 {
					t.Errorf("%s: asset %s: %d", target, u, w.Code)
				}
			}
		}
	}
}

// TestRunsPaging: a plan with 1,000 runs is listed 50 to a page, newest first, every run
// on exactly one page.
func TestRunsPaging(t *testing.T) {
	src := fixture(t, 999)
	h := newServer(t, src, 50).Handler()
	row := regexp.MustCompile(`<th scope="row"><a href="/runs/([^"]+)">`)
	seen := map[string]int{}
	var order []string
	for page := 1; page <= 20; page++ {
		w := get(t, h, "GET", "/plans/demo?page="+strconv.Itoa(page))
		if w.Code != 200 {
			t.Fatalf("page %d: %d", page, w.Code)
		}
		ids := row.FindAllStringSubmatch(w.Body.String(), -1)
		if len(ids) != 50 {
			t.Fatalf("page %d has %d runs, want 50", page, len(ids))
		}
		for _, m := range ids {
			seen[m[1]]++
			order = append(order, m[1])
		}
		body := w.Body.String()
		if (page < 20) != strings.Contains(body, `rel="next"`) || (page > 1) != strings.Contains(body, `rel="prev"`) {
			t.Errorf("page %d: wrong next/prev links", page)
		}
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct runs over 20 pages, want 1000", len(seen))
	}
	if order[0] != "demo-20261128T030000.000Z-a1b2" || order[999] != "demo-00001" {
		t.Errorf("not newest first: first %s, last %s", order[0], order[999])
	}
	if w := get(t, h, "GET", "/plans/demo?page=21"); w.Code != 404 {
		t.Errorf("page 21 of 20: %d", w.Code)
	}
}
