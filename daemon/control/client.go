package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/refreshd/refreshd/history"
)

// DefaultSocket is where the systemd unit's daemon listens.
const DefaultSocket = "/run/refreshd/refreshd.sock"

// ErrNoDaemon means nothing listens on the socket; callers may fall back to reading the
// state directory directly.
var ErrNoDaemon = errors.New("no daemon listening")

// ErrUnreachable is every failure to get an answer from the daemon: nothing listens
// (ErrNoDaemon), the socket is not the caller's to use, or the daemon did not answer in time.
var ErrUnreachable = errors.New("daemon unreachable")

// DefaultTimeout bounds a call to the daemon that is not a log stream: a wedged daemon
// must not hang `refreshd status` (or a script calling it) forever.
const DefaultTimeout = 30 * time.Second

// Client talks to a daemon over its socket.
type Client struct {
	socket  string
	http    *http.Client
	timeout time.Duration
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithTimeout bounds each call that is not a log stream (default DefaultTimeout); for a log
// stream it bounds the wait for the daemon's answer, not the stream. 0 or less: no bound.
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithRoundTripper wraps the client's transport (which dials the socket) in wrap: for
// tracing, or for checking every exchange against the API's description in tests.
func WithRoundTripper(wrap func(http.RoundTripper) http.RoundTripper) ClientOption {
	return func(c *Client) { c.http.Transport = wrap(c.http.Transport) }
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string, opts ...ClientOption) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	c := &Client{socket: socket, http: &http.Client{Transport: tr}, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	return c
}

// bounded returns ctx limited to the client's timeout, and a stop that lifts the bound
// (for a stream once its answer has come) and reports whether it had already expired.
// The daemon's silence then surfaces as an error naming the socket and the wait.
func (c *Client) bounded(ctx context.Context) (context.Context, func() (expired bool), context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if c.timeout <= 0 {
		return ctx, func() bool { return false }, func() { cancel(nil) }
	}
	t := time.AfterFunc(c.timeout, func() {
		cancel(Errorf(ErrUnreachable, "no answer from the daemon on %s within %s (is it wedged? see journalctl -u refreshd)", c.socket, c.timeout))
	})
	return ctx, func() bool { return !t.Stop() }, func() { t.Stop(); cancel(nil) }
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// dialError turns a failed connect into a message an operator can act on.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return Errorf(ErrUnreachable, "%w on %s (is refreshd.service running?)", ErrNoDaemon, c.socket)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return Errorf(ErrUnreachable, "permission denied on %s: the socket is for root and the daemon's group (is your user in it?)", c.socket)
	}
	return Errorf(ErrUnreachable, "connect to %s: %w", c.socket, err)
}

// APIError is an error answer from the daemon.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, query url.Values) (*http.Response, error) {
	u := "http://refreshd" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && !errors.Is(cause, ctx.Err()) {
			return nil, fmt.Errorf("%s %s: %w", method, path, cause)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, c.dialError(err)
		}
		return nil, fmt.Errorf("%s %s on %s: %w", method, path, c.socket, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &APIError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, method, path string, query url.Values, v any) error {
	ctx, _, cancel := c.bounded(ctx)
	defer cancel()
	resp, err := c.do(ctx, method, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			return fmt.Errorf("read answer to %s %s: %w", method, path, cause)
		}
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Pins returns the package pins runs published, newest first, as q selects them.
func (c *Client) Pins(ctx context.Context, q history.PinQuery) ([]history.Pin, error) {
	v := url.Values{}
	if q.Package != "" {
		v.Set("package", q.Package)
	}
	if q.Branch != "" {
		v.Set("branch", q.Branch)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var pins []history.Pin
	return pins, c.getJSON(ctx, http.MethodGet, "/v1/constraints", v, &pins)
}

// Caches returns the watched cache tags.
func (c *Client) Caches(ctx context.Context) ([]CacheTag, error) {
	var tags []CacheTag
	return tags, c.getJSON(ctx, http.MethodGet, "/v1/caches", nil, &tags)
}

// Plans returns the daemon's plans with their schedules, running and last runs.
func (c *Client) Plans(ctx context.Context) ([]PlanStatus, error) {
	var p []PlanStatus
	return p, c.getJSON(ctx, http.MethodGet, "/v1/plans", nil, &p)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.getJSON(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Trigger starts a run of plan now, with its default params.
func (c *Client) Trigger(ctx context.Context, plan string) (*Triggered, error) {
	return c.TriggerWith(ctx, plan, nil)
}

// TriggerWith starts a run of plan now with params (NAME -> VALUE; the daemon checks them
// against the plan before the run starts). They travel as ?param=NAME=VALUE.
func (c *Client) TriggerWith(ctx context.Context, plan string, params map[string]string) (*Triggered, error) {
	var q url.Values
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if q == nil {
			q = url.Values{}
		}
		q.Add("param", k+"="+params[k])
	}
	var t Triggered
	return &t, c.getJSON(ctx, http.MethodPost, "/v1/plans/"+url.PathEscape(plan)+"/run", q, &t)
}

// Runs lists runs, newest first; plan "" means all plans, limit 0 all runs.
func (c *Client) Runs(ctx context.Context, plan string, limit int) ([]*history.Run, error) {
	q := url.Values{}
	if plan != "" {
		q.Set("plan", plan)
	}
	q.Set("limit", strconv.Itoa(max(limit, 0)))
	var runs []*history.Run
	return runs, c.getJSON(ctx, http.MethodGet, "/v1/runs", q, &runs)
}

// Run returns one run.
func (c *Client) Run(ctx context.Context, id string) (*history.Run, error) {
	var r history.Run
	return &r, c.getJSON(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id), nil, &r)
}

// Cancel interrupts a running run.
func (c *Client) Cancel(ctx context.Context, id string) error {
	var v map[string]string
	return c.getJSON(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/cancel", nil, &v)
}

// Reload makes the daemon re-read its plans.
func (c *Client) Reload(ctx context.Context) (*Reloaded, error) {
	var r Reloaded
	return &r, c.getJSON(ctx, http.MethodPost, "/v1/reload", nil, &r)
}

// Logs calls line for each output line of the run (or of one step); with follow it
// returns when the run has ended.
func (c *Client) Logs(ctx context.Context, id, step string, follow bool, line func(string) error) error {
	q := url.Values{}
	if step != "" {
		q.Set("step", step)
	}
	if follow {
		q.Set("follow", "1")
	}
	// The timeout covers the wait for the daemon's answer; the stream itself may rightly
	// stay quiet for as long as a step prints nothing.
	ctx, lift, cancel := c.bounded(ctx)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"/logs", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if lift() {
		return fmt.Errorf("logs of %s: %w", id, context.Cause(ctx))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if err := line(sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read logs of %s: %w", id, err)
	}
	return nil
}
