// Package webhook sends failure and recovery notifications: a JSON payload, or the
// Slack-compatible {"text": ...} form, with bounded retries, off the run path.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Events.
const (
	OnFailure  = "failure"
	OnRecovery = "recovery"
)

// Target is one webhook.
type Target struct {
	URL    string   // resolved; may itself be a secret
	Format string   // json (default) | slack
	On     []string // empty: failure and recovery
	// Secrets are values to redact from anything logged about this target.
	Secrets []string
}

// Wants reports whether t is subscribed to event.
func (t Target) Wants(event string) bool {
	if len(t.On) == 0 {
		return true
	}
	for _, o := range t.On {
		if o == event {
			return true
		}
	}
	return false
}

// Event is the JSON payload.
type Event struct {
	Event    string    `json:"event"` // failure | recovery
	Plan     string    `json:"plan"`
	Run      string    `json:"run"`
	Status   string    `json:"status"`
	Previous string    `json:"previous,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	URL      string    `json:"url,omitempty"` // where an operator can read more, if configured
}

// Text is the one-line human form (Slack's "text").
func (e Event) Text() string {
	s := fmt.Sprintf("refreshd: plan %s run %s %s", e.Plan, e.Run, e.Status)
	if e.Event == OnRecovery {
		s = fmt.Sprintf("refreshd: plan %s recovered: run %s %s (previous run %s)", e.Plan, e.Run, e.Status, e.Previous)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Sender sends notifications in the background.
type Sender struct {
	client *retryablehttp.Client
	log    *slog.Logger
	wg     sync.WaitGroup
}

// NewSender returns a sender making up to retries+1 attempts per notification, each with
// timeout; backoff between them grows from 500ms to 10s.
func NewSender(log *slog.Logger, retries int, timeout time.Duration) *Sender {
	c := retryablehttp.NewClient()
	c.RetryMax = retries
	c.RetryWaitMin = 500 * time.Millisecond
	c.RetryWaitMax = 10 * time.Second
	c.HTTPClient.Timeout = timeout
	c.Logger = nil // its logger would print the URL, which may be a secret
	return &Sender{client: c, log: log}
}

// Send posts ev to every target subscribed to it, in the background: a slow or dead
// webhook never holds up a run.
func (s *Sender) Send(ctx context.Context, targets []Target, ev Event) {
	for _, t := range targets {
		if !t.Wants(ev.Event) {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.post(ctx, t, ev); err != nil {
				s.log.Warn("webhook failed", "plan", ev.Plan, "run", ev.Run, "webhook", Redact(t.URL, t.Secrets), "err", redactErr(err, t))
				return
			}
			s.log.Info("webhook sent", "plan", ev.Plan, "run", ev.Run, "event", ev.Event, "webhook", Redact(t.URL, t.Secrets))
		}()
	}
}

// Wait waits for notifications in flight (at shutdown).
func (s *Sender) Wait() { s.wg.Wait() }

func (s *Sender) post(ctx context.Context, t Target, ev Event) error {
	var body any = ev
	if t.Format == "slack" {
		body = map[string]string{"text": ev.Text()}
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
	if resp.StatusCode >= 300 {
		return fmt.Errorf("post webhook: %s", resp.Status)
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
	for _, s := range secrets {
		if s != "" {
			out = strings.ReplaceAll(out, s, "***")
		}
	}
	return out
}

func redactErr(err error, t Target) string {
	msg := strings.ReplaceAll(err.Error(), t.URL, Redact(t.URL, t.Secrets))
	if u, perr := url.Parse(t.URL); perr == nil && u.Path != "" && u.Path != "/" {
		msg = strings.ReplaceAll(msg, u.Path, "/***")
	}
	for _, s := range t.Secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	return msg
}
