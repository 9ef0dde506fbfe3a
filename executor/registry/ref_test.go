package registry

import "testing"

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "127.0.0.1:5000/demo/main/ci/python3.11:cache-linux-amd64", want: Ref{Host: "127.0.0.1:5000", Repo: "demo/main/ci/python3.11", Tag: "cache-linux-amd64"}},
		{in: "ghcr.io/apache/airflow/main/ci/python3.12:cache-linux-arm64", want: Ref{Host: "ghcr.io", Repo: "apache/airflow/main/ci/python3.12", Tag: "cache-linux-arm64"}},
		{in: "localhost/x", want: Ref{Host: "localhost", Repo: "x", Tag: "latest"}},
		{in: "localhost:5000/x:1", want: Ref{Host: "localhost:5000", Repo: "x", Tag: "1"}},
		{in: "busybox", want: Ref{Host: "docker.io", Repo: "library/busybox", Tag: "latest"}},
		{in: "apache/airflow:2.10.0", want: Ref{Host: "docker.io", Repo: "apache/airflow", Tag: "2.10.0"}},
		{in: "r.example.com/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			want: Ref{Host: "r.example.com", Repo: "a", Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{in: "", err: `image reference "": empty or padded`},
		{in: "Host.io/UPPER:1", err: `image reference "Host.io/UPPER:1": bad repository component "UPPER" (lower-case letters, digits, separators)`},
		{in: "r.io/a:bad tag", err: `image reference "r.io/a:bad tag": bad tag "bad tag"`},
		{in: "r.io/a@sha256:short", err: `image reference "r.io/a@sha256:short": bad digest "sha256:short"`},
		{in: "r.io/", err: `image reference "r.io/": no repository`},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseRef(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
