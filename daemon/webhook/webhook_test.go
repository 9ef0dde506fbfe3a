package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/redact"
)

// hookServer is a real HTTP server that answers 503 to the first failFirst requests, with
// "Retry-After: 3600" as a receiver under maintenance may: every test that retries shows
// the sender does not wait for the hour.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	calls  int
	bodies []string
	types  []string
}

func newHookServer(t *testing.T, failFirst int) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls++
		if h.calls <= failFirst {
			w.Header().Set("Retry-After", "3600")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		h.bodies = append(h.bodies, string(b))
		h.types = append(h.types, r.Header.Get("Content-Type"))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) snapshot() (calls int, bodies []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, append([]string(nil), h.bodies...)
}

func testSender(log *bytes.Buffer, retries int) *Sender {
	s := NewSender(slog.New(slog.NewTextHandler(log, nil)), retries, 5*time.Second)
	s.client.RetryWaitMin, s.client.RetryWaitMax = 10*time.Millisecond, 50*time.Millisecond
	return s
}

var failure = Event{Event: OnFailure, Plan: "nightly", Run: "nightly-1", Status: "failed",
	Reason: "step build: exit 1", Started: time.Unix(100, 0).UTC(), Ended: time.Unix(160, 0).UTC()}

func TestSendRetriesAndFormats(t *testing.T) {
	tests := []struct {
		name   string
		format string
		check  func(t *testing.T, body string)
	}{
		{"json", "json", func(t *testing.T, body string) {
			var ev Event
			if err := json.Unmarshal([]byte(body), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Event != OnFailure || ev.Plan != "nightly" || ev.Run != "nightly-1" || ev.Reason != "step build: exit 1" || !ev.Ended.Equal(failure.Ended) {
				t.Errorf("payload %+v", ev)
			}
		}},
		{"slack", "slack", func(t *testing.T, body string) {
			var m map[string]string
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || m["text"] != "refreshd: plan nightly run nightly-1 failed: step build: exit 1" {
				t.Errorf("slack payload %q", body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHookServer(t, 1)
			var log bytes.Buffer
			s := testSender(&log, 3)
			s.Send(context.Background(), []Target{{URL: srv.URL + "/hooks/T0K3N", Format: tt.format}}, failure)
			s.Wait()
			calls, bodies := srv.snapshot()
			if calls != 2 || len(bodies) != 1 {
				t.Fatalf("%d calls, %d delivered; want a 503 then one delivery", calls, len(bodies))
			}
			tt.check(t, bodies[0])
			if srv.types[0] != "application/json" {
				t.Errorf("Content-Type %q", srv.types[0])
			}
			if strings.Contains(log.String(), "T0K3N") {
				t.Errorf("the webhook path leaked into the log: %s", log.String())
			}
		})
	}
}

func TestSendGivesUpAfterRetriesWithoutLeakingTheURL(t *testing.T) {
	srv := newHookServer(t, 100)
	var log bytes.Buffer
	s := testSender(&log, 2)
	s.Send(context.Background(), []Target{{URL: srv.URL + "/services/SECRETPATH?token=QTOKEN"}}, failure)
	s.Wait()
	if calls, _ := srv.snapshot(); calls != 3 {
		t.Errorf("%d calls, want 3 (1 + 2 retries)", calls)
	}
	out := log.String()
	if !strings.Contains(out, "webhook failed") {
		t.Errorf("no failure logged: %s", out)
	}
	for _, leak := range []string{"SECRETPATH", "QTOKEN"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %s: %s", leak, out)
		}
	}
}

func TestSendRedactsSecretsFromPayload(t *testing.T) {
	const secret = "hunter2-s3cret"
	srv := newHookServer(t, 0)
	ev := failure
	ev.Reason = "push failed: https://ci:" + secret + "@git.example/x and Basic " + base64.StdEncoding.EncodeToString([]byte(secret))
	var log bytes.Buffer
	s := testSender(&log, 0)
	s.Send(context.Background(), []Target{{URL: srv.URL + "/h", Format: "json"}, {URL: srv.URL + "/s", Format: "slack"}}, ev, secret)
	s.Wait()
	_, bodies := srv.snapshot()
	if len(bodies) != 2 {
		t.Fatalf("%d deliveries, want 2", len(bodies))
	}
	for _, b := range bodies {
		if strings.Contains(b, secret) || strings.Contains(b, base64.StdEncoding.EncodeToString([]byte(secret))) {
			t.Errorf("payload leaks the secret: %s", b)
		}
		if !strings.Contains(b, "***") {
			t.Errorf("payload %s: want the secret masked", b)
		}
	}
}

func TestTargetWants(t *testing.T) {
	tests := []struct {
		on    []string
		event string
		want  bool
	}{
		{nil, OnFailure, true},
		{nil, OnRecovery, true},
		{[]string{OnFailure}, OnRecovery, false},
		{[]string{OnRecovery}, OnRecovery, true},
		{nil, OnSuccess, false},
		{[]string{OnSuccess}, OnSuccess, true},
		{[]string{OnSuccess}, OnRecovery, true},
		{[]string{OnFailure}, OnSuccess, false},
	}
	for _, tt := range tests {
		if got := (Target{On: tt.on}).Wants(tt.event); got != tt.want {
			t.Errorf("Target{On: %v}.Wants(%s) = %v", tt.on, tt.event, got)
		}
	}
	srv := newHookServer(t, 0)
	s := testSender(&bytes.Buffer{}, 0)
	s.Send(context.Background(), []Target{{URL: srv.URL, On: []string{OnRecovery}}}, failure)
	s.Wait()
	if calls, _ := srv.snapshot(); calls != 0 {
		t.Errorf("a recovery-only target got a failure (%d calls)", calls)
	}
}

func TestRecoveryText(t *testing.T) {
	ev := Event{Event: OnRecovery, Plan: "p", Run: "p-2", Status: "succeeded", Previous: "failed"}
	if got, want := ev.Text(), "refreshd: plan p recovered: run p-2 succeeded (previous run failed)"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
}

// The night's constraint changes and the run page ride along: named in the one-line form
// (at most a few pins, the rest counted), whole (up to MaxChanges) in the JSON; in Slack's
// form every value is escaped, so a reason or a package name cannot mention @channel or
// smuggle in a link, and the run page is the one link.
func TestConstraintsAndRunPage(t *testing.T) {
	changes := []history.PackageChange{
		{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"},
		{File: "constraints-3.12.txt", Package: "rich", New: "13.9.4"},
		{File: "constraints-3.12.txt", Package: "six", Old: "1.16.0"},
	}
	ev := Event{Event: OnSuccess, Plan: "demo/main", Run: "demo_main-1", Status: "succeeded",
		URL:         "https://refreshd.example.com/runs/demo_main-1",
		Constraints: []Published{NewPublished(&history.Publish{Branch: "constraints-main", Commit: "0123456789abcdef0123", Summary: "1 upgraded, 1 added, 1 removed", Changes: changes})}}
	want := "refreshd: plan demo/main run demo_main-1 succeeded; constraints-main 0123456789ab: 1 upgraded, 1 added, 1 removed (httpx 0.27.2→0.28.1, rich none→13.9.4, six 1.16.0→none) https://refreshd.example.com/runs/demo_main-1"
	if got := ev.Text(); got != want {
		t.Errorf("Text() =\n%q\nwant\n%q", got, want)
	}

	many := make([]history.PackageChange, MaxChanges+7)
	for i := range many {
		many[i] = history.PackageChange{Package: fmt.Sprintf("p%d", i), Old: "1", New: "2"}
	}
	pub := NewPublished(&history.Publish{Branch: "b", Commit: "c", Summary: "57 upgraded", Changes: many})
	if len(pub.Changes) != MaxChanges || pub.More != 7 {
		t.Errorf("NewPublished of %d changes: %d listed, %d more", len(many), len(pub.Changes), pub.More)
	}
	if got := (Event{Plan: "p", Run: "r", Status: "succeeded", Constraints: []Published{pub}}).Text(); !strings.HasSuffix(got, "p4 1→2, 52 more)") {
		t.Errorf("Text() of many changes = %q", got)
	}

	hostile := Event{Event: OnFailure, Plan: "p", Run: "r", Status: "failed", Reason: "exit 1: <!channel> see <https://evil.example|here> & <@U123>",
		URL: "https://refreshd.example.com/runs/r"}
	got := hostile.slackText()
	if want := "refreshd: plan p run r failed: exit 1: &lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; &lt;@U123&gt; <https://refreshd.example.com/runs/r|run page>"; got != want {
		t.Errorf("slackText() =\n%q\nwant\n%q", got, want)
	}

	// A secret in a package change (a private index's token in a pin) is masked too.
	leaky := Event{Constraints: []Published{{Branch: "b", Changes: []history.PackageChange{{Package: "pkg", New: "1.0+s3cr3tt0k3n"}}}}}
	if red := leaky.Redacted(redact.New("s3cr3tt0k3n")); strings.Contains(red.Constraints[0].Changes[0].New, "s3cr3tt0k3n") || !strings.Contains(leaky.Constraints[0].Changes[0].New, "s3cr3tt0k3n") {
		t.Errorf("Redacted: %+v (the original must be left alone)", red.Constraints)
	}
}

func TestCheckURLAndRedact(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"https://hooks.slack.com/services/T/B/X", ""},
		{"http://127.0.0.1:8080/hook", ""},
		{"ftp://host/x", `scheme "ftp"`},
		{"https:///path", "no host"},
		{"://bad", "does not parse"},
	}
	for _, tt := range tests {
		err := CheckURL(tt.url)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("CheckURL(%q) = %v, want %q", tt.url, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "path") {
			t.Errorf("CheckURL(%q) quotes the URL: %v", tt.url, err)
		}
	}
	if got := Redact("https://hooks.slack.com/services/T/B/X?k=v", nil); got != "https://hooks.slack.com/***" {
		t.Errorf("Redact = %q", got)
	}
	if got := Redact("https://tok3n.example/x", []string{"tok3n"}); got != "https://***.example/***" {
		t.Errorf("Redact with a secret host = %q", got)
	}
}

// A webhook redirected to another host is not followed: the other host never gets the
// payload nor, as Referer, the webhook's URL (its path is the credential). A redirect on
// the same host is followed without a Referer. Each case's first server answers the
// redirect; elsewhere is a second server on another port, i.e. another host.
func TestRedirectsKeepTheURL(t *testing.T) {
	const token = "T0K3N-in-path"
	type seen struct{ path, referer string }
	var mu sync.Mutex
	var got []seen
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.URL.Path, r.Header.Get("Referer")})
		mu.Unlock()
	}
	elsewhere := httptest.NewServer(http.HandlerFunc(record))
	defer elsewhere.Close()
	tests := []struct {
		name, to    string // redirect target: a path on the same server or a URL elsewhere
		code        int
		deliveredTo string // the path that must receive the payload; "" for none
	}{
		{"307 to another host", elsewhere.URL + "/catch", http.StatusTemporaryRedirect, ""},
		{"308 to another host", elsewhere.URL + "/catch", http.StatusPermanentRedirect, ""},
		{"302 to another host", elsewhere.URL + "/catch", http.StatusFound, ""},
		{"307 on the same host", "/moved", http.StatusTemporaryRedirect, "/moved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/hooks/") {
					http.Redirect(w, r, tt.to, tt.code)
					return
				}
				record(w, r)
			}))
			defer first.Close()
			var log bytes.Buffer
			s := testSender(&log, 2)
			s.Send(context.Background(), []Target{{URL: first.URL + "/hooks/" + token}}, failure)
			s.Wait()
			mu.Lock()
			defer mu.Unlock()
			for _, g := range got {
				if strings.Contains(g.referer, token) || g.referer != "" {
					t.Errorf("%s got Referer %q", g.path, g.referer)
				}
			}
			switch {
			case tt.deliveredTo == "" && len(got) > 0:
				t.Errorf("a redirect to another host was followed: %+v", got)
			case tt.deliveredTo != "" && (len(got) != 1 || got[0].path != tt.deliveredTo):
				t.Errorf("delivered to %+v, want once to %s", got, tt.deliveredTo)
			}
			if tt.deliveredTo == "" && !strings.Contains(log.String(), "to another host: not followed") {
				t.Errorf("the log does not say the redirect was not followed: %s", log.String())
			}
			if strings.Contains(log.String(), token) || strings.Contains(log.String(), elsewhere.URL) {
				t.Errorf("the log names the webhook's path or the redirect's target: %s", log.String())
			}
		})
	}
}

// A receiver answering 503 with "Retry-After: 3600" is asked again after the sender's own
// longest wait, not an hour later (retryablehttp's default backoff returns the header as is).
func TestRetryAfterIsCapped(t *testing.T) {
	srv := newHookServer(t, 1)
	var log bytes.Buffer
	s := testSender(&log, 2) // waits of at most 50ms
	done := make(chan struct{})
	go func() {
		s.Send(context.Background(), []Target{{URL: srv.URL + "/h"}}, failure)
		s.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the webhook still waits after 10s on a Retry-After of an hour")
	}
	if calls, bodies := srv.snapshot(); calls != 2 || len(bodies) != 1 || !strings.Contains(log.String(), "webhook sent") {
		t.Errorf("%d calls, %d delivered, want the 503 then a delivery: %s", calls, len(bodies), log.String())
	}
}

// A receiver gets a plan's events in the order they happened, even when the first one's
// delivery is slow: the server holds the failure until the recovery arrives (or a second
// passes), so a sender posting both at once delivers the recovery first.
func TestSendKeepsOrderPerTarget(t *testing.T) {
	var mu sync.Mutex
	var got []string
	second := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev Event
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if ev.Event == OnFailure {
			select {
			case <-second:
			case <-time.After(time.Second):
			}
		} else {
			defer once.Do(func() { close(second) })
		}
		mu.Lock()
		got = append(got, ev.Event+" "+ev.Run)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	var log bytes.Buffer
	s := testSender(&log, 0)
	target := []Target{{URL: srv.URL + "/hook"}}
	recovery := Event{Event: OnRecovery, Plan: "nightly", Run: "nightly-2", Status: "succeeded", Previous: "failed"}
	s.Send(context.Background(), target, failure)
	s.Send(context.Background(), target, recovery)
	s.Wait()
	if want := []string{"failure nightly-1", "recovery nightly-2"}; !slices.Equal(got, want) {
		t.Errorf("received %q, want %q\n%s", got, want, log.String())
	}
	if len(s.tails) != 0 {
		t.Errorf("%d send queues left after every send ended", len(s.tails))
	}
}
