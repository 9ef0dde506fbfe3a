package registry_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor/registry"
	"github.com/refreshd/refreshd/internal/teststack"
)

// pusher is a one-node remote buildx builder that pushes to test registries.
type pusher struct {
	dockerConfig string
	ctx          string
}

func newPusher(t *testing.T) *pusher {
	t.Helper()
	teststack.Require(t)
	node := teststack.StartBuildkitd(t, "push")
	p := &pusher{dockerConfig: teststack.DockerConfig(t), ctx: teststack.ScratchContext(t, map[string]string{"f": t.Name()})}
	p.docker(t, "buildx", "create", "--name", "push", "--driver", "remote", "--node", "push0", "--platform", "linux/amd64", node.Endpoint)
	return p
}

func (p *pusher) docker(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = teststack.Env(p.dockerConfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cache pushes a registry cache for linux/amd64 to ref.
func (p *pusher) cache(t *testing.T, ref string) {
	p.docker(t, "buildx", "build", "--builder", "push", "--platform", "linux/amd64", "--output", "type=cacheonly",
		"--cache-to", "type=registry,ref="+ref+",mode=max", p.ctx)
}

// image pushes an image for linux/amd64 and linux/386 (an index) to ref.
func (p *pusher) image(t *testing.T, ref string) {
	p.docker(t, "buildx", "build", "--builder", "push", "--platform", "linux/amd64,linux/386",
		"--output", "type=image,name="+ref+",push=true", p.ctx)
}

func (p *pusher) login(t *testing.T, host, user, pass string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(p.dockerConfig, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newClient(t *testing.T, dockerConfig string) *registry.Client {
	return registry.New(registry.Options{
		DockerConfig: dockerConfig,
		PlainHTTP:    []string{"127.0.0.1"},
		Attempts:     5,
		RetryWaitMin: 50 * time.Millisecond,
		RetryWaitMax: 500 * time.Millisecond,
		Log:          slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
}

func TestDigestAndCreated(t *testing.T) {
	p := newPusher(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	cacheRef := reg.Host + "/demo/main/ci/python3.12:cache-linux-amd64"
	imageRef := reg.Host + "/demo/main/ci/python3.12:latest"
	start := time.Now()
	p.cache(t, cacheRef)
	p.image(t, imageRef)
	c := newClient(t, p.dockerConfig)
	ctx := t.Context()

	d, found, err := c.Digest(ctx, cacheRef)
	if err != nil || !found || !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("Digest(%s) = %q, %v, %v; want a sha256 digest", cacheRef, d, found, err)
	}
	d2, _, err := c.Digest(ctx, cacheRef)
	if err != nil || d2 != d {
		t.Errorf("second Digest = %q, %v; want %q", d2, err, d)
	}
	missing := reg.Host + "/demo/main/ci/python3.12:cache-linux-s390x"
	if d, found, err := c.Digest(ctx, missing); err != nil || found {
		t.Errorf("Digest(%s) = %q, %v, %v; want absent without error", missing, d, found, err)
	}
	created, err := c.ImageCreated(ctx, imageRef)
	if err != nil {
		t.Fatalf("ImageCreated(%s): %v", imageRef, err)
	}
	if created.Before(start.Add(-time.Minute)) || created.After(time.Now().Add(time.Minute)) {
		t.Errorf("ImageCreated = %s, want about %s", created, start)
	}
	if _, err := c.ImageCreated(ctx, cacheRef); err == nil || !strings.Contains(err.Error(), "no created time") {
		t.Errorf("ImageCreated of a cache manifest: %v, want a 'no created time' error", err)
	}
	if _, err := c.ImageCreated(ctx, missing); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("ImageCreated of a missing image: %v, want ErrNotFound", err)
	}
}

// failingProxy fronts a real registry and answers the first n requests with status.
func failingProxy(t *testing.T, target string, n int64, status int, retryAfter string) (host string, requests *atomic.Int64) {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	requests = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= n {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, "injected failure", status)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), requests
}

func TestRetriesServerErrors(t *testing.T) {
	p := newPusher(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	p.cache(t, reg.Host+"/demo/ci:cache-linux-amd64")
	want, _, err := newClient(t, p.dockerConfig).Digest(t.Context(), reg.Host+"/demo/ci:cache-linux-amd64")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		failures   int64
		status     int
		retryAfter string
		wantErr    string
	}{
		{name: "500 three times", failures: 3, status: 500},
		{name: "429 with Retry-After", failures: 2, status: 429, retryAfter: "1"},
		{name: "503 past the attempts", failures: 10, status: 503, wantErr: "answered 503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, requests := failingProxy(t, reg.Host, tt.failures, tt.status, tt.retryAfter)
			ref := host + "/demo/ci:cache-linux-amd64"
			start := time.Now()
			got, found, err := newClient(t, p.dockerConfig).Digest(t.Context(), ref)
			took := time.Since(start)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Digest through %s: %v, want %q", tt.name, err, tt.wantErr)
				}
				if requests.Load() != 5 {
					t.Errorf("%d requests, want 5 (the attempts)", requests.Load())
				}
				return
			}
			if err != nil || !found || got != want {
				t.Fatalf("Digest = %q, %v, %v; want %q", got, found, err, want)
			}
			if requests.Load() != tt.failures+1 {
				t.Errorf("%d requests, want %d", requests.Load(), tt.failures+1)
			}
			if tt.retryAfter != "" && took < time.Second {
				t.Errorf("took %s: Retry-After: %s not honoured", took, tt.retryAfter)
			}
			t.Logf("%s: %d requests in %s", tt.name, requests.Load(), took.Round(time.Millisecond))
		})
	}
}

func TestBasicAuthCredentials(t *testing.T) {
	p := newPusher(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{User: "release", Password: "s3cret-pass"})
	ref := reg.Host + "/demo/ci:cache-linux-amd64"
	p.login(t, reg.Host, "release", "s3cret-pass")
	p.cache(t, ref) // buildx pushes with the same docker config credentials

	if d, found, err := newClient(t, p.dockerConfig).Digest(t.Context(), ref); err != nil || !found || d == "" {
		t.Fatalf("right credentials: Digest = %q, %v, %v", d, found, err)
	}

	p.login(t, reg.Host, "release", "wrong-pass")
	_, _, err := newClient(t, p.dockerConfig).Digest(t.Context(), ref)
	var ae *registry.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("wrong credentials: %v, want *AuthError", err)
	}
	want := fmt.Sprintf(`registry %s rejected the credentials of user "release" from the docker config (401 Unauthorized)`, reg.Host)
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("error %q: want %q and no password", err, want)
	}

	empty := teststack.DockerConfig(t)
	_, _, err = newClient(t, empty).Digest(t.Context(), ref)
	if !errors.As(err, &ae) || ae.User != "" || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("no credentials: %v, want an AuthError saying so", err)
	}
}
