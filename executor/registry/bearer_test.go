package registry_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/internal/teststack"
)

// TestBearerTokenFlow puts the distribution token protocol in front of a real registry: a
// token service that grants a token for the right Basic credentials (or an anonymous one
// when allowed), and a gate that answers 401 with a Bearer challenge unless the request
// carries a granted token. This is the flow of ghcr.io and Docker Hub.
func TestBearerTokenFlow(t *testing.T) {
	p := newPusher(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	p.cache(t, reg.Host+"/apache/airflow/main/ci/python3.12:cache-linux-amd64")

	var tokenRequests atomic.Int64
	var lastScope atomic.Value
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenRequests.Add(1)
		lastScope.Store(r.URL.Query().Get("scope"))
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok:
			fmt.Fprint(w, `{"token":"anonymous-token"}`)
		case user == "release" && pass == "right":
			fmt.Fprint(w, `{"access_token":"release-token"}`)
		default:
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(tokens.Close)

	for _, tt := range []struct {
		name      string
		user      string
		pass      string
		accept    string // the token the gate accepts
		wantErr   string
		wantFound bool
	}{
		{name: "credentials", user: "release", pass: "right", accept: "release-token", wantFound: true},
		{name: "anonymous", accept: "anonymous-token", wantFound: true},
		{name: "wrong password", user: "release", pass: "wrong", accept: "release-token",
			wantErr: `rejected the credentials of user "release" from the docker config (401 Unauthorized): token service`},
		{name: "token not enough", accept: "release-token", wantErr: "requires authentication"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse("http://" + reg.Host)
			rp := httputil.NewSingleHostReverseProxy(u)
			gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+tt.accept {
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry",scope="repository:apache/airflow/main/ci/python3.12:pull"`, tokens.URL))
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				rp.ServeHTTP(w, r)
			}))
			t.Cleanup(gate.Close)
			host := strings.TrimPrefix(gate.URL, "http://")
			if tt.user != "" {
				p.login(t, host, tt.user, tt.pass)
			} else {
				p.login(t, "elsewhere.invalid", "x", "y")
			}
			before := tokenRequests.Load()
			c := newClient(t, p.dockerConfig)
			ref := host + "/apache/airflow/main/ci/python3.12:cache-linux-amd64"
			for range 2 { // the second check reuses the cached token
				d, found, err := c.Digest(t.Context(), ref)
				if tt.wantErr != "" {
					var ae *registry.AuthError
					if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) || (tt.pass != "" && strings.Contains(err.Error(), tt.pass)) {
						t.Fatalf("Digest: %v, want an AuthError with %q", err, tt.wantErr)
					}
					return
				}
				if err != nil || found != tt.wantFound || !strings.HasPrefix(d, "sha256:") {
					t.Fatalf("Digest = %q, %v, %v", d, found, err)
				}
			}
			if n := tokenRequests.Load() - before; n != 1 {
				t.Errorf("%d token requests for two checks, want 1 (token cached)", n)
			}
			if s := lastScope.Load(); s != "repository:apache/airflow/main/ci/python3.12:pull" {
				t.Errorf("token scope %v", s)
			}
		})
	}
}
