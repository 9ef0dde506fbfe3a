package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/refreshd/refreshd/internal/backoff"
)

// Manifest media types a registry may hold for a tag. Without the OCI ones in Accept, a
// registry answers MANIFEST_UNKNOWN for BuildKit's cache manifests.
const (
	mediaOCIIndex      = "application/vnd.oci.image.index.v1+json"
	mediaOCIManifest   = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerList    = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaDockerV2      = "application/vnd.docker.distribution.manifest.v2+json"
	manifestAcceptList = mediaOCIIndex + ", " + mediaOCIManifest + ", " + mediaDockerList + ", " + mediaDockerV2
)

// Options configure a Client.
type Options struct {
	// DockerConfig is the directory of config.json for credentials; "" means DOCKER_CONFIG
	// or ~/.docker, as docker resolves it.
	DockerConfig string
	// PlainHTTP lists registries reached over http instead of https: "host:port" for one
	// port, "host" for every port of that host. Nothing is plain HTTP unless listed.
	PlainHTTP []string
	// Attempts is the number of tries of one request on 5xx, 429 or a connection error;
	// default 5.
	Attempts int
	// RetryWaitMin and RetryWaitMax bound the backoff between tries (Retry-After, when the
	// registry sends it, is honoured up to RetryWaitMax: backoff.Capped); defaults 500ms
	// and 15s.
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one HTTP request; default 30s.
	Timeout time.Duration
	Log     *slog.Logger // default slog.Default()
}

// Client reads one or more registries. It is safe for concurrent use; it caches tokens.
type Client struct {
	opts   Options
	http   *retryablehttp.Client
	creds  *credentials
	tokens *tokenCache
}

// tokenCache holds bearer tokens by host + " " + scope.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (tc *tokenCache) get(key string) string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.m[key]
}

func (tc *tokenCache) set(key, token string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.m[key] = token
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = 500 * time.Millisecond
	}
	if opts.RetryWaitMax <= 0 {
		opts.RetryWaitMax = 15 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = opts.Timeout
	return &Client{opts: opts, http: retryClient(hc, opts), creds: &credentials{dir: opts.DockerConfig}, tokens: &tokenCache{m: map[string]string{}}}
}

// retryClient wraps hc (and its connection pool) with the retry policy of opts.
func retryClient(hc *http.Client, opts Options) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       retryLogger{opts.Log},
		RetryWaitMin: opts.RetryWaitMin,
		RetryWaitMax: opts.RetryWaitMax,
		RetryMax:     opts.Attempts - 1,
		CheckRetry:   retryPolicy,
		Backoff:      backoff.Capped, // honours Retry-After on 429 and 503, up to RetryWaitMax
		ErrorHandler: lastTry,
	}
}

// retryPolicy is retryablehttp's default, except that an answer in plain HTTP to an HTTPS
// request is final: asking again gets the same answer, and the fix is the operator's.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if isPlainHTTPAnswer(err) {
		return false, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// isPlainHTTPAnswer reports whether err is net/http's report of a server that answered a
// TLS handshake in plain HTTP. net/http has no exported error for it: the text is its
// only mark.
func isPlainHTTPAnswer(err error) bool {
	return err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// lastTry is the retryablehttp.ErrorHandler: the last response, not a generic "giving up"
// error, so the caller can say what the registry answered; a transport error (a *url.Error,
// which names the method and URL) gets only the number of tries added.
func lastTry(resp *http.Response, err error, tries int) (*http.Response, error) {
	if err != nil && tries > 1 {
		err = fmt.Errorf("%w (%d tries)", err, tries)
	}
	return resp, err
}

// WithLog returns a client that logs to l and shares c's HTTP connection pool. A daemon
// builds one Client and derives one per step, so connections are reused across steps
// instead of each step leaving its own idle pool behind. The derived client reads the
// docker config afresh and starts with no tokens: credentials rotated while the daemon runs
// for months take effect at the next step, as they did with a new Client per step.
func (c *Client) WithLog(l *slog.Logger) *Client {
	if l == nil {
		l = slog.Default()
	}
	opts := c.opts
	opts.Log = l
	return &Client{opts: opts, http: retryClient(c.http.HTTPClient, opts), creds: &credentials{dir: opts.DockerConfig}, tokens: &tokenCache{m: map[string]string{}}}
}

// HTTPClient is the underlying HTTP client, whose transport holds the connection pool.
func (c *Client) HTTPClient() *http.Client { return c.http.HTTPClient }

// retryLogger adapts slog to retryablehttp's LeveledLogger, at debug level except retries.
type retryLogger struct{ l *slog.Logger }

func (r retryLogger) Error(msg string, kv ...any) { r.l.Warn("registry: "+msg, kv...) }
func (r retryLogger) Info(msg string, kv ...any)  { r.l.Debug("registry: "+msg, kv...) }
func (r retryLogger) Debug(msg string, kv ...any) { r.l.Debug("registry: "+msg, kv...) }
func (r retryLogger) Warn(msg string, kv ...any)  { r.l.Warn("registry: "+msg, kv...) }

func (c *Client) scheme(host string) string {
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		name = host
	}
	if slices.Contains(c.opts.PlainHTTP, host) || slices.Contains(c.opts.PlainHTTP, name) {
		return "http"
	}
	return "https"
}

// Digest returns the digest of the manifest ref names (HEAD, with every manifest type in
// Accept). A tag that does not exist gives found == false and no error. Its errors do not
// repeat ref: every caller names the ref with what it was doing ("verify cache REF: ..."),
// and a transport error names the request's URL.
func (c *Client) Digest(ctx context.Context, ref string) (digest string, found bool, err error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", false, err
	}
	resp, err := c.do(ctx, r, http.MethodHead, "/manifests/"+r.reference(), manifestAcceptList)
	if err != nil {
		return "", false, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", false, nil
	case resp.StatusCode != http.StatusOK:
		return "", false, fmt.Errorf("HEAD manifest: registry answered %s", resp.Status)
	}
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
		return d, true, nil
	}
	// Some registries omit the digest on HEAD: hash the manifest itself.
	body, _, err := c.get(ctx, r, "/manifests/"+r.reference(), manifestAcceptList)
	if err != nil {
		return "", false, fmt.Errorf("no digest on HEAD, hash the manifest: %w", err)
	}
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:]), true, nil
}

// ErrNotFound is returned (wrapped) by ImageCreated for a missing image.
var ErrNotFound = errors.New("not found")

// ImageCreated returns the `created` time of an image's config. For an index or manifest
// list it reads the linux/amd64 image, or the first one when there is none.
func (c *Client) ImageCreated(ctx context.Context, ref string) (time.Time, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return time.Time{}, err
	}
	reference := r.reference()
	for range 2 { // an index, then the image it points to
		body, mediaType, err := c.get(ctx, r, "/manifests/"+reference, manifestAcceptList)
		if err != nil {
			return time.Time{}, fmt.Errorf("read image %s: %w", ref, err)
		}
		var m struct {
			MediaType string `json:"mediaType"`
			Config    struct {
				MediaType string `json:"mediaType"`
				Digest    string `json:"digest"`
			} `json:"config"`
			Manifests []struct {
				Digest   string `json:"digest"`
				Platform struct {
					OS           string `json:"os"`
					Architecture string `json:"architecture"`
				} `json:"platform"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return time.Time{}, fmt.Errorf("read image %s: parse manifest: %w", ref, err)
		}
		if mediaType == "" || strings.HasPrefix(mediaType, "text/plain") {
			mediaType = m.MediaType
		}
		if mediaType == mediaOCIIndex || mediaType == mediaDockerList {
			if len(m.Manifests) == 0 {
				return time.Time{}, fmt.Errorf("read image %s: empty index", ref)
			}
			reference = m.Manifests[0].Digest
			for _, d := range m.Manifests {
				if d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
					reference = d.Digest
					break
				}
			}
			continue
		}
		if m.Config.Digest == "" {
			return time.Time{}, fmt.Errorf("read image %s: manifest has no config", ref)
		}
		blob, _, err := c.get(ctx, r, "/blobs/"+m.Config.Digest, "*/*")
		if err != nil {
			return time.Time{}, fmt.Errorf("read image %s config: %w", ref, err)
		}
		var cfg struct {
			Created *time.Time `json:"created"`
		}
		if err := json.Unmarshal(blob, &cfg); err != nil || cfg.Created == nil {
			return time.Time{}, fmt.Errorf("read image %s: config %s (%s) has no created time", ref, m.Config.Digest, m.Config.MediaType)
		}
		return *cfg.Created, nil
	}
	return time.Time{}, fmt.Errorf("read image %s: index points to another index", ref)
}

// get fetches a manifest or blob body (at most 16 MiB) and its content type.
func (c *Client) get(ctx context.Context, r Ref, path, accept string) ([]byte, string, error) {
	resp, err := c.do(ctx, r, http.MethodGet, path, accept)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, "", fmt.Errorf("%s%s: %w", r.Repo, path, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s%s: registry %s answered %s", r.Repo, path, r.Host, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, "", fmt.Errorf("read %s%s: %w", r.Repo, path, err)
	}
	return body, resp.Header.Get("Content-Type"), nil
}

func retryablehttpRequest(ctx context.Context, method, u string) (*retryablehttp.Request, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, u, err)
	}
	req.Header.Set("User-Agent", "refreshd")
	return req, nil
}

func retryablehttpFromRequest(req *http.Request) (*retryablehttp.Request, error) {
	r, err := retryablehttp.FromRequest(req)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	r.Header.Set("User-Agent", "refreshd")
	return r, nil
}
