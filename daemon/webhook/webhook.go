// Package webhook sends run notifications (failure, recovery, and success for the targets
// that ask for it): a JSON payload, or the Slack-compatible {"text": ...} form, with
// bounded retries, off the run path.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/backoff"
	"github.com/refreshd/refreshd/internal/redact"
)

// Events.
const (
	OnFailure  = "failure"
	OnRecovery = "recovery" // the first success after a failure
	OnSuccess  = "success"  // any success; only for targets that ask for it
)

// Target is one webhook.
type Target struct {
	URL    string   // resolved; may itself be a secret
	Format string   // json (default) | slack
	On     []string // empty: failure and recovery
	// Secrets are values to redact from anything logged about this target.
	Secrets []string
}

// Wants reports whether t is subscribed to event. A recovery is also a success.
func (t Target) Wants(event string) bool {
	if len(t.On) == 0 {
		return event == OnFailure || event == OnRecovery
	}
	for _, o := range t.On {
		if o == event || (o == OnSuccess && event == OnRecovery) {
			return true
		}
	}
	return false
}

// Event is the JSON payload.
type Event struct {
	Event    string    `json:"event"` // failure | recovery | success
	Plan     string    `json:"plan"`
	Run      string    `json:"run"`
	Status   string    `json:"status"`
	Previous string    `json:"previous,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	URL      string    `json:"url,omitempty"` // the run's page on the dashboard, when the daemon knows its URL (--http-url)
	// Constraints are what the run published, one entry per constraints branch it changed.
	Constraints []Published `json:"constraints,omitempty"`
}

// Published is what a run published to one constraints branch: the commit, the summary
// ("3 upgraded, 1 added") and the package changes, at most MaxChanges of them (More counts
// the rest: a payload has a bounded size whatever the night changed).
type Published struct {
	Branch  string                  `json:"branch"`
	Commit  string                  `json:"commit"`
	Summary string                  `json:"summary"`
	Changes []history.PackageChange `json:"changes,omitempty"`
	More    int                     `json:"more,omitempty"`
}

// MaxChanges bounds the package changes an event lists per branch.
const MaxChanges = 50

// textChanges is how many package changes the one-line form names per branch.
const textChanges = 5

// NewPublished is p as an event lists it.
func NewPublished(p *history.Publish) Published {
	out := Published{Branch: p.Branch, Commit: p.Commit, Summary: p.Summary, Changes: p.Changes}
	if len(out.Changes) > MaxChanges {
		out.Changes, out.More = out.Changes[:MaxChanges:MaxChanges], len(p.Changes)-MaxChanges
	}
	return out
}

// Text is the one-line human form.
func (e Event) Text() string {
	s := fmt.Sprintf("refreshd: plan %s run %s %s", e.Plan, e.Run, e.Status)
	if e.Event == OnRecovery {
		s = fmt.Sprintf("refreshd: plan %s recovered: run %s %s (previous run %s)", e.Plan, e.Run, e.Status, e.Previous)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	for _, c := range e.Constraints {
		s += fmt.Sprintf("; %s %s: %s", c.Branch, shortCommit(c.Commit), c.Summary)
		var pins []string
		for _, ch := range c.Changes[:min(len(c.Changes), textChanges)] {
			pins = append(pins, fmt.Sprintf("%s %s→%s", ch.Package, orNone(ch.Old), orNone(ch.New)))
		}
		if n := len(c.Changes) + c.More - len(pins); n > 0 {
			pins = append(pins, fmt.Sprintf("%d more", n))
		}
		if len(pins) > 0 {
			s += " (" + strings.Join(pins, ", ") + ")"
		}
	}
	if e.URL != "" {
		s += " " + e.URL
	}
	return s
}

// slackText is Text for Slack: its markup characters in every value escaped (a reason
// quoting "<!channel>" or "<https://evil|click>" must not become a mention or a link), and
// the run's page as a link.
func (e Event) slackText() string {
	url := e.URL
	e.URL = ""
	s := slackEscape(e.Text())
	if url != "" {
		s += " <" + slackEscape(url) + "|run page>"
	}
	return s
}

// slackEscape escapes the three characters Slack's text markup gives a meaning.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// Redacted returns ev with every secret value (and its escaped and base64 forms) masked in
// every text field, so no payload carries a secret whatever the run's reason quotes.
func (e Event) Redacted(r *redact.Redactor) Event {
	e.Plan, e.Run, e.Status, e.Previous = r.String(e.Plan), r.String(e.Run), r.String(e.Status), r.String(e.Previous)
	e.Reason, e.URL = r.String(e.Reason), r.String(e.URL)
	cs := make([]Published, len(e.Constraints))
	for i, c := range e.Constraints {
		c.Branch, c.Commit, c.Summary = r.String(c.Branch), r.String(c.Commit), r.String(c.Summary)
		c.Changes = slices.Clone(c.Changes)
		for j, ch := range c.Changes {
			c.Changes[j] = history.PackageChange{File: r.String(ch.File), Package: r.String(ch.Package), Old: r.String(ch.Old), New: r.String(ch.New)}
		}
		cs[i] = c
	}
	if len(cs) > 0 {
		e.Constraints = cs
	}
	return e
}

// CheckURL reports whether raw is a URL a webhook can be posted to (http or https, with a
// host). The error never quotes the URL: it may be a secret.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("webhook URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("webhook URL scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("webhook URL has no host")
	}
	return nil
}

// Sender sends notifications in the background, to each target in the order they were
// given: a receiver sees a plan's failure before its recovery even when the failure's
// delivery is retried or slow.
type Sender struct {
	client *retryablehttp.Client
	log    *slog.Logger
	wg     sync.WaitGroup

	mu    sync.Mutex
	tails map[string]chan struct{} // per target URL: closed when the last send queued to it is over
}

// NewSender returns a sender making up to retries+1 attempts per notification, each with
// timeout; backoff between them grows from 500ms to 10s.
func NewSender(log *slog.Logger, retries int, timeout time.Duration) *Sender {
	c := retryablehttp.NewClient()
	c.RetryMax = retries
	c.RetryWaitMin = 500 * time.Millisecond
	c.RetryWaitMax = 10 * time.Second
	c.Backoff = backoff.Capped // a receiver's Retry-After: 3600 must not hold a notification for hours
	c.HTTPClient.Timeout = timeout
	c.HTTPClient.CheckRedirect = sameHostRedirect
	c.Logger = nil // its logger would print the URL, which may be a secret
	return &Sender{client: c, log: log, tails: map[string]chan struct{}{}}
}

// Send posts ev to every target subscribed to it, in the background: a slow or dead
// webhook never holds up a run. secrets (the plan's secret values) and every target's own
// secrets are redacted from the payload before it leaves.
func (s *Sender) Send(ctx context.Context, targets []Target, ev Event, secrets ...string) {
	all := append([]string(nil), secrets...)
	for _, t := range targets {
		all = append(all, t.Secrets...)
	}
	ev = ev.Redacted(redact.New(all...))
	for _, t := range targets {
		if !t.Wants(ev.Event) {
			continue
		}
		prev, done := s.enqueue(t.URL)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.dequeue(t.URL, done)
			if prev != nil {
				select {
				case <-prev: // the event before this one, to this target, is delivered or given up
				case <-ctx.Done(): // stopping: post below fails at once and says so
				}
			}
			if err := s.post(ctx, t, ev); err != nil {
				s.log.Warn("webhook failed", "plan", ev.Plan, "run", ev.Run, "webhook", Redact(t.URL, t.Secrets), "err", redactErr(err, t))
				return
			}
			s.log.Info("webhook sent", "plan", ev.Plan, "run", ev.Run, "event", ev.Event, "webhook", Redact(t.URL, t.Secrets))
		}()
	}
}

// enqueue makes a send to url the last in its queue: it returns the channel closed when the
// one before it is over (nil: none) and the one this send closes.
func (s *Sender) enqueue(url string) (prev, done chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, done = s.tails[url], make(chan struct{})
	s.tails[url] = done
	return prev, done
}

// dequeue ends a send to url, letting the next one go; the last one forgets the queue.
func (s *Sender) dequeue(url string, done chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(done)
	if s.tails[url] == done {
		delete(s.tails, url)
	}
}

// Wait waits for notifications in flight (at shutdown).
func (s *Sender) Wait() { s.wg.Wait() }

func (s *Sender) post(ctx context.Context, t Target, ev Event) error {
	var body any = ev
	if t.Format == "slack" {
		body = map[string]string{"text": ev.slackText()}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode webhook payload: %w", err)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "refreshd")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
		return fmt.Errorf("post webhook: %s to another host: not followed (a webhook's URL is its credential; give the URL it redirects to)", resp.Status)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("post webhook: %s", resp.Status)
	}
	return nil
}

// sameHostRedirect is the webhook client's redirect policy. A redirect to another host
// (or port, or from https to http) is not followed: the payload would go to a receiver the
// operator never named, and net/http would send it the webhook's URL, whose path or query
// is usually the credential, as Referer. A redirect on the same host (a path moved) is
// followed, at most 5 times, with the Referer net/http adds removed.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	req.Header.Del("Referer")
	first := via[0].URL
	switch {
	case len(via) > 5:
		return errors.New("stopped after 5 redirects")
	case req.URL.Host != first.Host, first.Scheme == "https" && req.URL.Scheme != "https":
		return http.ErrUseLastResponse // post reports the redirect, without its Location
	}
	return nil
}

// Redact returns a form of a webhook URL safe to log: scheme and host only (paths and
// queries of webhook URLs are usually the credential), with any secret value masked.
func Redact(raw string, secrets []string) string {
	out := "(unparsable url)"
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		out = u.Scheme + "://" + u.Host + "/***"
	}
	return redact.New(secrets...).String(out)
}

// redactErr masks the target's URL (path and query: usually the credential) and secrets in
// an error from posting to it.
func redactErr(err error, t Target) string {
	msg := strings.ReplaceAll(err.Error(), t.URL, Redact(t.URL, t.Secrets))
	hide := append([]string(nil), t.Secrets...)
	if u, perr := url.Parse(t.URL); perr == nil {
		if u.Path != "" && u.Path != "/" {
			hide = append(hide, u.Path)
		}
		hide = append(hide, u.RawQuery)
	}
	return redact.New(hide...).String(msg)
}
