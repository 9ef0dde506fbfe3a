package git

import "testing"

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"fatal: unable to access 'https://user:s3cret@github.com/a/b.git/'", "fatal: unable to access 'https://github.com/a/b.git/'"},
		{"https://ghp_TOKEN@github.com/a/b.git", "https://github.com/a/b.git"},
		{"HTTP://u:p@127.0.0.1:8080/x", "HTTP://127.0.0.1:8080/x"},
		{"ssh://git@github.com/a/b.git", "ssh://git@github.com/a/b.git"},
		{"ssh://git:pw@github.com/a/b.git", "ssh://git@github.com/a/b.git"},
		{"git@github.com:a/b.git and mail me@example.com", "git@github.com:a/b.git and mail me@example.com"},
	}
	for _, tc := range tests {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct {
		repo, token         string
		url, user, password string
	}{
		{"https://x:tok1@h/r.git", "", "https://h/r.git", "x", "tok1"},
		{"https://tok2@h/r.git", "", "https://h/r.git", "x-access-token", "tok2"},
		{"https://x:tok1@h/r.git", "plan", "https://h/r.git", "x", "plan"},
		{"https://h/r.git", "plan", "https://h/r.git", "x-access-token", "plan"},
		{"git@h:r.git", "", "git@h:r.git", "", ""},
		{"/srv/r.git", "", "/srv/r.git", "", ""},
	}
	for _, tc := range tests {
		r, err := parseRemote(tc.repo, tc.token)
		if err != nil || r.URL != tc.url || r.User != tc.user || r.Password != tc.password {
			t.Errorf("parseRemote(%q, %q) = %+v, %v", tc.repo, tc.token, r, err)
		}
	}
	if Key("https://x:old@h/r.git", "b") != Key("https://x:new@h/r.git", "b") {
		t.Error("rotating the token in the URL changes the clone key")
	}
}
