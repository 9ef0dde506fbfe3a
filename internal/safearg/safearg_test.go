package safearg

import (
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	tests := []struct {
		rule  string
		check func(string) error
		value string
		want  string // "" accepted, else a part of the error
	}{
		{"ref", GitRef, "main", ""},
		{"ref", GitRef, "v3-1-test", ""},
		{"ref", GitRef, "refs/pull/123/head", ""},
		{"ref", GitRef, "0123456789abcdef0123456789abcdef01234567", ""},
		{"ref", GitRef, "release/2.10", ""},
		{"ref", GitRef, "--upload-pack=id > /tmp/x; git-upload-pack", `starts with "-"`},
		{"ref", GitRef, ":refs/heads/evil", `holds ":"`},
		{"ref", GitRef, "a:b", `holds ":"`},
		{"ref", GitRef, "+main", `starts with "+"`},
		{"ref", GitRef, "^main", "one of ~^?*[\\"},
		{"ref", GitRef, "refs/heads/*", "one of ~^?*[\\"},
		{"ref", GitRef, "main\n", "control character"},
		{"ref", GitRef, "a\x00", "control character"},
		{"ref", GitRef, "a..b", `".."`},
		{"ref", GitRef, "", "empty"},
		{"repo", GitRepo, "https://github.com/apache/airflow.git", ""},
		{"repo", GitRepo, "https://x-access-token:t@github.com/a/b.git", ""},
		{"repo", GitRepo, "git@github.com:apache/airflow.git", ""},
		{"repo", GitRepo, "ssh://git@[::1]:2222/r.git", ""},
		{"repo", GitRepo, "file:///srv/u.git", ""},
		{"repo", GitRepo, "/srv/my repos/u.git", ""},
		{"repo", GitRepo, "git://127.0.0.1:9418/u.git", ""},
		{"repo", GitRepo, "--upload-pack=touch /tmp/x", `starts with "-"`},
		{"repo", GitRepo, "ext::sh -c touch% /tmp/x", `remote helper "ext"`},
		{"repo", GitRepo, "fd::5", `remote helper "fd"`},
		{"repo", GitRepo, "codecommit::us-east-1://r", `remote helper "codecommit"`},
		{"repo", GitRepo, "ssh://-oProxyCommand=id/r", `host "-oProxyCommand=id"`},
		{"repo", GitRepo, "ssh://u@-oProxyCommand=id/r", `host "-oProxyCommand=id"`},
		{"repo", GitRepo, "u@-oProxyCommand=id:r", `host "-oProxyCommand=id"`},
		{"repo", GitRepo, "/srv/u.git\nx", "control character"},
		{"operand", Operand, ".", ""},
		{"operand", Operand, "src dir", ""},
		{"operand", Operand, "-", `starts with "-"`},
		{"operand", Operand, "-f", `starts with "-"`},
		{"operand", Operand, "a\tb", "control character"},
		{"text", Text, "-O2 --x", ""},
		{"text", Text, "a\rb", "control character"},
	}
	for _, tt := range tests {
		err := tt.check(tt.value)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s %q refused: %v", tt.rule, tt.value, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s %q: %v, want %q", tt.rule, tt.value, err, tt.want)
		}
	}
}

// Hidden is true of control and format characters (the "Trojan Source" bidi set among
// them) and of nothing a line shows as itself.
func TestHidden(t *testing.T) {
	for _, tc := range []struct {
		r    rune
		want bool
	}{
		{'\n', true}, {'\x1b', true}, {'\x00', true}, {'\u0085', true}, // control
		{'\u202a', true}, {'\u202b', true}, {'\u202c', true}, {'\u202d', true}, {'\u202e', true}, // embeddings, overrides
		{'\u2066', true}, {'\u2067', true}, {'\u2068', true}, {'\u2069', true}, // isolates
		{'\u200e', true}, {'\u200f', true}, {'\u061c', true}, // LRM, RLM, ALM
		{'\u200b', true}, {'\ufeff', true}, {'\u00ad', true}, // zero width space, BOM, soft hyphen
		{'a', false}, {' ', false}, {'é', false}, {'\u05d0', false}, {'…', false}, {'\ufffd', false},
	} {
		if got := Hidden(tc.r); got != tc.want {
			t.Errorf("Hidden(%U) = %v, want %v", tc.r, got, tc.want)
		}
	}
}
