package git

import (
	"errors"
	"fmt"
	"os"
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

// A hook that prints megabytes before refusing a push costs the daemon a bounded error:
// git's stderr is kept at its first and last MaxStderrKept bytes, and the error still names
// the hook's last line, which says why.
func TestPushRefusedByNoisyHook(t *testing.T) {
	f := newFixture(t)
	hook := filepath.Join(f.remote, "hooks", "pre-receive")
	const noise = 4 << 20
	writeFile(t, hook, fmt.Sprintf("#!/bin/sh\nyes 'noise from the hook' | head -c %d >&2\necho >&2\necho 'refused: branch is frozen' >&2\nexit 1\n", noise))
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	f.generate(t, "2025-06-02T02:00:00Z", []string{"apache-beam==2.51.0", "boto3==1.28.0", "celery==5.3.1", "requests==2.31.0"}, []string{"requests==2.31.0"})
	_, err := Publish(testCtx(t), f.options())
	var ee *ExitError
	if !errors.Is(err, errRefused) || !errors.As(err, &ee) {
		t.Fatalf("publish through a noisy refusing hook: %v; want a refusal carrying git's exit", err)
	}
	if len(ee.Stderr) > 2*MaxStderrKept+100 {
		t.Errorf("the error keeps %d bytes of git's stderr (the hook printed %d); want at most about %d", len(ee.Stderr), noise, 2*MaxStderrKept)
	}
	if !strings.Contains(err.Error(), "remote: refused: branch is frozen") || !strings.Contains(ee.Stderr, " bytes left out ...]\n") {
		t.Errorf("the error does not end with the hook's last line or does not say what it left out: ...%s", err.Error()[max(0, len(err.Error())-300):])
	}
}
