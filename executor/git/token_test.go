package git

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// serveGit serves the fixture's remote over real smart HTTP, requiring token.
func serveGit(t *testing.T, f *fixture, token string) string {
	t.Helper()
	return testkit.ServeGit(t, f.remote, token)
}

func TestTokenNeverShown(t *testing.T) {
	const token = "ghp_s3cretT0kenValue"
	tests := []struct {
		name      string
		repo      func(base string) string
		planToken string
		wantErr   bool
	}{
		{name: "token in the URL", repo: func(b string) string { return strings.Replace(b, "http://", "http://x-access-token:"+token+"@", 1) }},
		{name: "token as URL user", repo: func(b string) string { return strings.Replace(b, "http://", "http://"+token+"@", 1) }},
		{name: "token from plan secret", repo: func(b string) string { return b }, planToken: token},
		{name: "wrong token in the URL", repo: func(b string) string {
			return strings.Replace(b, "http://", "http://x-access-token:"+token+"WRONG@", 1)
		}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			base := serveGit(t, f, token)
			f.generate(t, "2025-06-01T02:00:00Z", []string{"apache-beam==2.52.0"}, []string{"requests==2.31.0"})
			var out bytes.Buffer
			o := f.options()
			o.Repo, o.Token, o.Output = tc.repo(base), tc.planToken, &out
			o.Log = nil
			res, err := Publish(testCtx(t), o)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err = %v, want error %v\n%s", err, tc.wantErr, out.String())
			}
			if !tc.wantErr && (res.Commit == "" || f.head(t) != res.Commit) {
				t.Fatalf("not published: %+v", res)
			}
			record, _ := json.Marshal(res)
			config, _ := os.ReadFile(filepath.Join(res.Clone, ".git", "config"))
			places := map[string]string{"output": out.String(), "result": string(record), "clone config": string(config)}
			if err != nil {
				places["error"] = err.Error()
				t.Logf("error as shown: %v", err)
			}
			for where, text := range places {
				if strings.Contains(text, token) || strings.Contains(text, "s3cret") {
					t.Errorf("the token appears in the %s:\n%s", where, text)
				}
			}
			if res.Repo != base {
				t.Errorf("recorded repo %q, want %q", res.Repo, base)
			}
			if !strings.Contains(out.String(), "$ git push") && !tc.wantErr {
				t.Errorf("git's commands are not shown in the output:\n%s", out.String())
			}
		})
	}
}

func TestLastCommitTime(t *testing.T) {
	const token = "tok-for-last-commit"
	f := newFixture(t)
	base := serveGit(t, f, token)
	want := testkit.Git(t, f.remote, "log", "-1", "--format=%ct", "refs/heads/"+branch)
	for name, call := range map[string]func() (time.Time, error){
		"path": func() (time.Time, error) { return LastCommitTime(testCtx(t), nil, f.remote, branch, testkit.GitEnv()) },
		"token env": func() (time.Time, error) {
			return LastCommitTime(testCtx(t), nil, base, branch, append(testkit.GitEnv(), TokenEnv(token)...))
		},
		"token in URL": func() (time.Time, error) {
			return LastCommitTime(testCtx(t), nil, strings.Replace(base, "http://", "http://u:"+token+"@", 1), branch, testkit.GitEnv())
		},
	} {
		got, err := call()
		if err != nil || got.Unix() == 0 || strconv.FormatInt(got.Unix(), 10) != want {
			t.Errorf("%s: LastCommitTime = %v, %v; want unix %s", name, got, err, want)
		}
	}
	_, err := LastCommitTime(testCtx(t), nil, strings.Replace(base, "http://", "http://u:"+token+"x@", 1), branch, testkit.GitEnv())
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("bad credential: err = %v; want an error without the token", err)
	}
	if _, err := LastCommitTime(testCtx(t), nil, f.remote, "no-such-branch", testkit.GitEnv()); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("missing branch: err = %v", err)
	}
}
