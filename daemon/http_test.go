package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/daemon/control/apitest"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/plan"
)

// TestDashboard: the daemon serves the dashboard on --http, on the metrics listener when
// both name one address and on its own otherwise; a running step's output reaches a
// follower line by line before the step ends; no page, stream or log shows a secret
// value the step printed.
func TestDashboard(t *testing.T) {
	const secret = "hunter2-Sup3rS3cret"
	t.Setenv("REFRESHD_TEST_DASHBOARD_TOKEN", secret)
	shared := testkit.FreeAddr(t)
	tests := []struct {
		name                string
		metricsAddr, webAdr string
	}{
		{"shared listener", shared, shared},
		{"own listener", testkit.FreeAddr(t), testkit.FreeAddr(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := parsePlan(t, dir, "echo", `plan: echo
schedule: "0 3 * * *"
timezone: Europe/Berlin
secrets:
  TOKEN: {env: REFRESHD_TEST_DASHBOARD_TOKEN}
steps:
  - id: say
    secrets: [TOKEN]
    run: [sh, -c, "echo one; sleep 0.6; echo token=$TOKEN; sleep 0.6; echo three"]
`)
			td := startDaemon(t, dir, Config{Load: plansOf(p), MetricsAddr: tt.metricsAddr, HTTPAddr: tt.webAdr, Version: "test"})
			c, _ := apitest.Client(t, td.sock)
			waitSocket(t, c)

			web := "http://" + tt.webAdr
			body := httpGet(t, web+"/", 200)
			if !strings.Contains(body, `<a href="/plans/echo">echo</a>`) || !strings.Contains(body, "Europe/Berlin") {
				t.Errorf("plans page lacks the plan and its zone:\n%s", body)
			}
			httpGet(t, "http://"+tt.metricsAddr+"/metrics", 200)
			if tt.metricsAddr != tt.webAdr {
				httpGet(t, web+"/metrics", 404)
				httpGet(t, "http://"+tt.metricsAddr+"/", 404)
			}

			tr, err := c.Trigger(context.Background(), "echo")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(web + "/events?" + url.Values{"run": {tr.Run}, "step": {"say"}}.Encode())
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("follow the run: %v %v", err, resp)
			}
			defer resp.Body.Close()
			var got []string
			ended := false
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() && !ended {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "event: end"):
					ended = true
				case strings.HasPrefix(line, "data: "):
					got = append(got, strings.TrimPrefix(line, "data: "))
					if len(got) == 1 {
						// The first line arrived while the step still runs (it sleeps after it).
						r, err := c.Run(context.Background(), tr.Run)
						if err != nil || r.Status != history.StatusRunning {
							t.Errorf("first line %q came when the run was %v (%v), not running", got[0], r.Status, err)
						}
					}
				}
			}
			if !ended || strings.Join(got, "|") != "one|token=***|three" {
				t.Errorf("followed %q (ended %v), want one, the masked token line and three, then the end", got, ended)
			}
			testkit.WaitFor(t, "the run to be recorded", 5*time.Second, func() bool {
				r, err := c.Run(context.Background(), tr.Run)
				return err == nil && r.Status == history.StatusSucceeded
			})
			pages := []string{"/", "/plans/echo", "/runs/" + tr.Run,
				"/log?" + url.Values{"run": {tr.Run}, "step": {"say"}, "attempt": {"1"}}.Encode(),
				"/log?" + url.Values{"run": {tr.Run}, "step": {"say"}, "attempt": {"1"}, "raw": {"1"}}.Encode(),
				"/events?" + url.Values{"run": {tr.Run}, "step": {"say"}}.Encode()}
			for _, pg := range pages {
				b := httpGet(t, web+pg, 200)
				if strings.Contains(b, secret) {
					t.Errorf("%s shows the secret value:\n%s", pg, b)
				}
				if strings.HasPrefix(pg, "/log") && !strings.Contains(b, "token=***") {
					t.Errorf("%s lacks the masked line:\n%s", pg, b)
				}
			}
			if run := httpGet(t, web+"/runs/"+tr.Run, 200); !strings.Contains(run, `data-instance="say"`) {
				t.Errorf("run page has no bar for step say:\n%s", run)
			}
			httpGet(t, web+"/runs/nope", 404)
			if resp, err := http.Post(web+"/", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST /: %v %v, want 405 (read-only)", err, resp)
			}
		})
	}
}

func httpGet(t *testing.T, u string, code int) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %s, want %d\n%s", u, resp.Status, code, b)
	}
	return string(b)
}

// TestHTTPListenErrors: a bad or busy --http address stops the start with an error naming
// the flag or the dashboard, and leaves no listener open.
func TestHTTPListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	metricsAddr := testkit.FreeAddr(t)
	for _, tt := range []struct{ addr, want string }{
		{"127.0.0.1:notaport:1", `--http "127.0.0.1:notaport:1"`},
		{busy.Addr().String(), "listen for dashboard on " + busy.Addr().String()},
	} {
		dir := t.TempDir()
		store, eng, _ := realEngine(t, dir)
		d, err := New(Config{PlansDir: dir, Load: func(string) ([]*plan.Plan, error) { return nil, nil }, Engine: eng, Store: store,
			Socket: filepath.Join(dir, "refreshd.sock"), MetricsAddr: metricsAddr, HTTPAddr: tt.addr,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		err = d.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--http %s: %v, want an error with %q", tt.addr, err, tt.want)
		}
		// The metrics listener opened first was closed again.
		l, lerr := net.Listen("tcp", metricsAddr)
		if lerr != nil {
			t.Errorf("--http %s: metrics address still held after the failed start: %v", tt.addr, lerr)
		} else {
			l.Close()
		}
	}
}

// TestForgedHost: every path of the dashboard's listener, /metrics and the live stream
// included, answers 421 to a Host header that is not one of its names (a DNS-rebinding
// page), and serves the listener's own address, localhost and the --http-host names.
func TestForgedHost(t *testing.T) {
	dir := t.TempDir()
	p := parsePlan(t, dir, "echo", "plan: echo\nsteps:\n  - id: say\n    run: [\"true\"]\n")
	addr := testkit.FreeAddr(t)
	td := startDaemon(t, dir, Config{Load: plansOf(p), MetricsAddr: addr, HTTPAddr: addr, HTTPHosts: []string{"dash.example.com"}, Version: "test"})
	c, _ := apitest.Client(t, td.sock)
	waitSocket(t, c)
	_, port, _ := net.SplitHostPort(addr)
	get := func(host, path string) int {
		t.Helper()
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("GET %s with Host %q: %v", path, host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	paths := []string{"/", "/plans/echo", "/runs/nope", "/log?run=x&step=y", "/events?run=x", "/static/style.css", "/metrics"}
	for _, host := range []string{"attacker.example.com", "attacker.example.com:" + port, "dash.example.com.evil.example:" + port, "127.0.0.1:1", "localhost"} {
		for _, path := range paths {
			if code := get(host, path); code != http.StatusMisdirectedRequest {
				t.Errorf("GET %s with Host %q: %d, want 421", path, host, code)
			}
		}
	}
	for _, host := range []string{addr, "localhost:" + port, "dash.example.com:" + port} {
		for _, path := range []string{"/", "/plans/echo", "/static/style.css", "/metrics"} {
			if code := get(host, path); code != http.StatusOK {
				t.Errorf("GET %s with Host %q: %d, want 200", path, host, code)
			}
		}
	}
}
