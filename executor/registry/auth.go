package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
)

// AuthError says a registry refused us: which registry, which user (never the password).
type AuthError struct {
	Registry string
	User     string // "" when no credentials were found
	Status   string
	Detail   string
}

func (e *AuthError) Error() string {
	if e.User == "" {
		return fmt.Sprintf("registry %s requires authentication and the docker config has no credentials for it (%s)", e.Registry, e.Status)
	}
	msg := fmt.Sprintf("registry %s rejected the credentials of user %q from the docker config (%s)", e.Registry, e.User, e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// credentials loads the docker config once and looks hosts up in it.
type credentials struct {
	dir  string
	once sync.Once
	cfg  *configfile.ConfigFile
	err  error
}

// lookup returns the credentials for a registry host: auths, credHelpers and credsStore, as
// docker itself resolves them.
func (cr *credentials) lookup(host string) (types.AuthConfig, error) {
	cr.once.Do(func() {
		cr.cfg, cr.err = config.Load(cr.dir)
	})
	if cr.err != nil {
		return types.AuthConfig{}, fmt.Errorf("load docker config: %w", cr.err)
	}
	key := host
	if host == dockerHub || host == dockerHubAPI {
		key = dockerHubAuthsKey
	}
	ac, err := cr.cfg.GetAuthConfig(key)
	if err != nil {
		return types.AuthConfig{}, fmt.Errorf("credentials for %s: %w", host, err)
	}
	return ac, nil
}

// challenge is a parsed WWW-Authenticate header.
type challenge struct {
	Scheme string // "bearer" or "basic", lower-cased
	Params map[string]string
}

// parseChallenge parses `Bearer realm="...",service="...",scope="..."` (quoted or token
// values; commas inside quotes kept).
func parseChallenge(h string) challenge {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	ch := challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			after = after[1:]
			var b strings.Builder
			i := 0
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val = b.String()
			if i < len(after) {
				i++
			}
			after = after[i:]
		} else {
			val, after, _ = strings.Cut(after, ",")
			after = "," + after
		}
		ch.Params[key] = strings.TrimSpace(val)
		_, rest, _ = strings.Cut(after, ",")
		rest = strings.TrimSpace(rest)
	}
	return ch
}

// do sends one API request for r, authenticating when the registry asks to.
func (c *Client) do(ctx context.Context, r Ref, method, path, accept string) (*http.Response, error) {
	host := r.apiHost()
	u := c.scheme(host) + "://" + host + "/v2/" + r.Repo + path
	scope := "repository:" + r.Repo + ":pull"
	send := func(authz string) (*http.Response, error) {
		req, err := retryablehttpRequest(ctx, method, u)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		// Not wrapped: a transport error is a *url.Error, which names the method and URL.
		resp, err := c.http.Do(req)
		if isPlainHTTPAnswer(err) {
			return nil, fmt.Errorf("%w: registry %s speaks plain HTTP; if that is intended (a local registry without TLS), start refreshd with --plain-http-registry %s", err, host, host)
		}
		return resp, err
	}

	token := c.tokens.get(host + " " + scope)
	authz := ""
	if token != "" {
		authz = "Bearer " + token
	}
	resp, err := send(authz)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ch := parseChallenge(resp.Header.Get("WWW-Authenticate"))
	drain(resp)
	ac, err := c.creds.lookup(r.Host)
	if err != nil {
		return nil, err
	}
	user, pass := ac.Username, ac.Password
	switch ch.Scheme {
	case "bearer":
		if ac.RegistryToken != "" {
			token = ac.RegistryToken
		} else {
			token, err = c.fetchToken(ctx, r.Host, ch, scope, user, pass, ac.IdentityToken)
			if err != nil {
				return nil, err
			}
		}
		c.tokens.set(host+" "+scope, token)
		authz = "Bearer " + token
	case "basic":
		if user == "" {
			return nil, &AuthError{Registry: r.Host, Status: resp.Status}
		}
		req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		req.SetBasicAuth(user, pass)
		authz = req.Header.Get("Authorization")
	default:
		return nil, fmt.Errorf("%s %s: 401 with unsupported challenge %q", method, u, ch.Scheme)
	}
	resp, err = send(authz)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		drain(resp)
		return nil, &AuthError{Registry: r.Host, User: user, Status: resp.Status}
	}
	return resp, nil
}

// fetchToken gets a bearer token from the challenge's realm: with Basic credentials when
// there are any (or an OAuth refresh token for identity tokens), anonymously otherwise.
func (c *Client) fetchToken(ctx context.Context, registry string, ch challenge, scope, user, pass, identity string) (string, error) {
	realm := ch.Params["realm"]
	if realm == "" {
		return "", fmt.Errorf("registry %s: bearer challenge without realm", registry)
	}
	if s := ch.Params["scope"]; s != "" {
		scope = s
	}
	q := url.Values{}
	if svc := ch.Params["service"]; svc != "" {
		q.Set("service", svc)
	}
	q.Set("scope", scope)
	var req *http.Request
	var err error
	if identity != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {identity}, "service": {ch.Params["service"]}, "scope": {scope}, "client_id": {"refreshd"}}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm+"?"+q.Encode(), nil)
		if err == nil && user != "" {
			req.SetBasicAuth(user, pass)
		}
	}
	if err != nil {
		return "", fmt.Errorf("registry %s: token request to %s: %w", registry, realm, err)
	}
	rreq, err := retryablehttpFromRequest(req)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(rreq)
	if err != nil {
		return "", fmt.Errorf("registry %s: token from %s: %w", registry, realm, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", &AuthError{Registry: registry, User: user, Status: resp.Status, Detail: "token service " + realm}
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("registry %s: token from %s: %s", registry, realm, resp.Status)
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return "", fmt.Errorf("registry %s: parse token from %s: %w", registry, realm, err)
	}
	if tr.Token == "" {
		tr.Token = tr.AccessToken
	}
	if tr.Token == "" {
		return "", fmt.Errorf("registry %s: token service %s returned no token", registry, realm)
	}
	return tr.Token, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
