package git

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPublishErrors checks what a failed publish says and returns: one "publish constraints
// to REPO branch BRANCH:" prefix, then the operation that failed, never the branch twice, never
// a credential; and a Result naming the (redacted) repository and branch even when the
// repository address itself is bad.
func TestPublishErrors(t *testing.T) {
	f := newFixture(t)
	f.generate(t, "2025-06-01T02:00:00Z", seedPins, []string{"requests==2.31.0"})
	for _, tc := range []struct {
		name     string
		change   func(o *Options)
		want     string // the whole error, with REMOTE for the fixture's remote
		wantRepo string // Result.Repo; "" for REMOTE
	}{
		{name: "bad repository URL",
			change:   func(o *Options) { o.Repo = "https://bot:tok3n-s3cret@example.com/%zz" },
			want:     `publish constraints to https://example.com/%zz branch ` + branch + `: parse repository URL "https://example.com/%zz": invalid URL`,
			wantRepo: "https://example.com/%zz"},
		{name: "no files match",
			change: func(o *Options) { o.Files = []string{"nothing/*.txt"} },
			want: "publish constraints to REMOTE branch " + branch + ": files nothing/*.txt: no file matches in " + f.workdir +
				" (the generation produced nothing to publish)"},
		{name: "relative workdir",
			change: func(o *Options) { o.Workdir = "" },
			want:   "publish constraints to REMOTE branch " + branch + `: workdir "" is not absolute`},
		{name: "missing message",
			change: func(o *Options) { o.Message = nil },
			want:   "publish constraints to REMOTE branch " + branch + ": no commit message"},
		{name: "missing ignore pattern",
			change: func(o *Options) { o.Ignore = nil },
			want:   "publish constraints to REMOTE branch " + branch + ": no ignore pattern"},
		{name: "zero attempts",
			change: func(o *Options) { o.MaxAttempts = 0 },
			want:   "publish constraints to REMOTE branch " + branch + ": max attempts 0: must be at least 1"},
		{name: "remote gone",
			change: func(o *Options) { o.Repo = filepath.Join(t.TempDir(), "gone.git"); o.FetchAttempts = 1 },
			want:   "publish constraints to GONE branch " + branch + ": update the constraints clone: reach the remote after 1 tries: git ls-remote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := f.options()
			tc.change(&o)
			res, err := Publish(testCtx(t), o)
			if err == nil {
				t.Fatal("publish succeeded")
			}
			got := strings.ReplaceAll(err.Error(), f.remote, "REMOTE")
			got = strings.ReplaceAll(got, o.Repo, "GONE")
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("error:\n%s\nwant it to start with:\n%s", got, tc.want)
			}
			if n := strings.Count(got, "publish constraints"); n != 1 {
				t.Errorf("error says %q %d times: %s", "publish constraints", n, got)
			}
			if strings.Contains(got, "tok3n-s3cret") {
				t.Errorf("error shows the credential: %s", got)
			}
			wantRepo := tc.wantRepo
			if wantRepo == "" {
				wantRepo = o.Repo
			}
			if res == nil || res.Repo != wantRepo || res.Branch != branch {
				t.Errorf("result = %+v, want repository %s and branch %s", res, wantRepo, branch)
			}
		})
	}
}
