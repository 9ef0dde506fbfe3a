// Package apitest checks control API exchanges against the API's OpenAPI 3.1 description
// (daemon/control/openapi.yaml), with kin-openapi's openapi3filter. Tests that talk to a
// daemon make their client with Client, so every answer the suite gets is checked.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/refreshd/refreshd/daemon/control"
)

// Spec is the loaded, validated description and its router.
type Spec struct {
	Doc    *openapi3.T
	router routers.Router
}

// Load parses and validates the embedded description.
func Load(ctx context.Context) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(control.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	return &Spec{Doc: doc, router: r}, nil
}

// Check validates one exchange: the request against its operation, the response's status,
// headers and body against the operation's responses. body is the response body already
// read (nil for a stream, whose body is not checked).
func (s *Spec) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return s.checkNoOperation(req, http.StatusMethodNotAllowed, status, header, body)
	case errors.Is(err, routers.ErrPathNotFound):
		return s.checkNoOperation(req, http.StatusNotFound, status, header, body)
	case err != nil:
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	opts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(req.Context(), in); reqErr != nil {
		// A request the description rejects must be answered 400 with an Error body.
		if status != http.StatusBadRequest {
			return fmt.Errorf("%s %s: answer %d to a request openapi.yaml rejects (%v); want 400", req.Method, req.URL.Path, status, reqErr)
		}
		if err := s.checkError(body); err != nil {
			return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
		return nil
	}
	// The description lists each operation's 4xx answers; its `default` stands for 500 and
	// 503 only. Without this a 404 where the description says 409 would pass as `default`.
	if route.Operation.Responses.Status(status) == nil && status != http.StatusInternalServerError && status != http.StatusServiceUnavailable {
		return fmt.Errorf("%s %s: answer %d, which openapi.yaml does not list for %s (only as default, which is for 500 and 503)\nbody: %s",
			req.Method, req.URL.Path, status, route.Operation.OperationID, body)
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true, ExcludeResponseBody: body == nil}}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), rin); err != nil {
		return fmt.Errorf("%s %s: answer %d does not match openapi.yaml: %w\nbody: %s", req.Method, req.URL.Path, status, err, body)
	}
	return nil
}

// checkNoOperation checks the answer to a request the description has no operation for: the
// API's convention (its description's text) is 404 for an unknown path and 405 with Allow
// for a known path asked with another method, each with an Error body. Allow must list
// exactly the path's operations (HEAD comes with GET).
func (s *Spec) checkNoOperation(req *http.Request, want, status int, header http.Header, body []byte) error {
	if status != want {
		return fmt.Errorf("%s %s: answer %d, want %d", req.Method, req.URL.Path, status, want)
	}
	if err := s.checkError(body); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if want != http.StatusMethodNotAllowed {
		return nil
	}
	item := s.Doc.Paths.Find(req.URL.Path)
	if item == nil {
		// A templated path: find it through a known method.
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := req.Clone(req.Context())
			probe.Method = m
			if route, _, err := s.router.FindRoute(probe); err == nil {
				item = route.PathItem
				break
			}
		}
	}
	if item == nil {
		return fmt.Errorf("%s %s: 405, but no path of openapi.yaml matches", req.Method, req.URL.Path)
	}
	var wantAllow []string
	for m := range item.Operations() {
		wantAllow = append(wantAllow, m)
		if m == http.MethodGet {
			wantAllow = append(wantAllow, http.MethodHead)
		}
	}
	gotAllow := strings.Split(header.Get("Allow"), ", ")
	slices.Sort(wantAllow)
	slices.Sort(gotAllow)
	if !slices.Equal(gotAllow, wantAllow) {
		return fmt.Errorf("%s %s: Allow %q, want the path's operations %q", req.Method, req.URL.Path, header.Get("Allow"), strings.Join(wantAllow, ", "))
	}
	return nil
}

// checkError checks body against the description's Error schema.
func (s *Spec) checkError(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error body is not JSON: %w: %s", err, body)
	}
	if err := s.Doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		return fmt.Errorf("error body does not match the Error schema: %w", err)
	}
	return nil
}

// Checked counts the exchanges a Client checked, by operation.
type Checked struct {
	mu  sync.Mutex
	ops map[string]int
}

// Ops returns "METHOD /path/template STATUS" -> count.
func (c *Checked) Ops() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.ops))
	for k, v := range c.ops {
		out[k] = v
	}
	return out
}

// Client is control.NewClient(socket, opts...) whose every exchange is checked against the
// description; a mismatch fails t. A log stream's answer is checked for status and headers
// (its body is the run's output, text).
func Client(t testing.TB, socket string, opts ...control.ClientOption) (*control.Client, *Checked) {
	t.Helper()
	wrap, checked := checker(t)
	return control.NewClient(socket, append(opts, control.WithRoundTripper(wrap))...), checked
}

// HTTPClient is a plain HTTP client on the socket whose exchanges are checked likewise, for
// requests the control.Client never makes (a wrong method, a bad query parameter).
// Requests go to http://refreshd/PATH.
func HTTPClient(t testing.TB, socket string) (*http.Client, *Checked) {
	t.Helper()
	wrap, checked := checker(t)
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: wrap(tr)}, checked
}

func checker(t testing.TB) (func(http.RoundTripper) http.RoundTripper, *Checked) {
	t.Helper()
	spec, err := Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checked := &Checked{ops: map[string]int{}}
	return func(next http.RoundTripper) http.RoundTripper {
		return &checking{next: next, spec: spec, t: t, checked: checked}
	}, checked
}

type checking struct {
	next    http.RoundTripper
	spec    *Spec
	t       testing.TB
	checked *Checked
}

func (c *checking) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	var body []byte
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if body == nil {
			body = []byte{}
		}
	}
	if err := c.spec.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		c.t.Errorf("control API: %v", err)
	}
	path := req.URL.Path
	if route, _, err := c.spec.router.FindRoute(req); err == nil {
		path = route.Path
	}
	c.checked.mu.Lock()
	c.checked.ops[fmt.Sprintf("%s %s %d", req.Method, path, resp.StatusCode)]++
	c.checked.mu.Unlock()
	return resp, nil
}
